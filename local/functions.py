"""The template's functions as local Lambda execution environments (worker processes).

Each environment is a process running Lambda's own runtime interface client (`awslambdaric`,
against a Runtime API of its own: `local.runtime_api`) with exactly the environment variables
template.yaml gives the function (resolved to the local resources), plus what the Lambda
runtime itself sets and `AWS_ENDPOINT_URL` pointing at the AWS emulation. Where the template
enables SnapStart, the environment starts in SnapStart mode, so its before-snapshot hooks run
after init and its after-restore hooks at its first invocation (`LOCAL_SNAPSTART=0`: off). One
environment serves one invocation at a time; concurrent requests get more environments (each
a cold start), as Lambda scales, up to a cap per function (`LOCAL_MAX_ENVIRONMENTS`, default
4). An invocation that outlives the function's Timeout ends its environment, as Lambda does.

Where this differs from Lambda: Lambda scales a function to the account's concurrency (1,000
by default), but each local environment is a process with the whole layer imported (about
100 MB), all sharing this machine's cores, so the pool stops at the cap. Beyond it an
invocation waits for an environment to come free, up to `LOCAL_ENVIRONMENT_WAIT` seconds
(default: the function's Timeout), and only then is refused (`FunctionThrottled`), which the
gateway answers as API Gateway answers a throttled function.

A worker's stdout and stderr (the function's logs) are read from pipes and written to ours a
whole line at a time (`local.console`), so lines from concurrent environments never merge.
Workers start with SIGINT blocked (a terminal's Ctrl-C reaches the whole process group, and
stays pending there): the stack ends them, all at once (`close_pools`), as Lambda does, with
SIGKILL; on Linux they also get SIGKILL if the stack itself dies (PR_SET_PDEATHSIG).

With a CPU limit (`LOCAL_CPU_SHARE`, `local.cpu_share`), each environment runs in a cgroup of
its own at its share of a core, from its first instruction; the group goes when it ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from local.console import LineWriter, forward_lines, stderr_line, stdout_line
from local.cpu_share import CpuGroup, CpuLimit
from local.runtime_api import Invocation, RuntimeApi
from local.template import ROOT, Template

T = TypeVar("T")
LAYER_PYTHON = ROOT / "layers" / "offer_state" / "python"
# Environments per function, for this project's 2-core machine: `make load` at concurrency 16
# measured about the same throughput with 2 and 4 per function (84 to 91 requests/s), and
# under half of it with 8 (37), whose extra cold starts compete for the two cores. 4 rather
# than 2: a burst of 4 runs at once, as on Lambda, and two slow invocations (an AIR MILES
# delay) do not hold up all of a function's requests; 8 processes of about 100 MB in all.
DEFAULT_MAX_ENVIRONMENTS = 4
# Lambda's limit for a SnapStart restore, its after-restore hooks included: 10 s
# (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html). Locally
# it is the time from handing an invocation over to the runtime client taking it.
RESTORE_TIMEOUT = 10.0
# Lambda's limit for init (on demand): 10 s, beyond which the request fails (Sandbox.Timedout;
# a gateway's 500). With SnapStart, Lambda inits at publish time, with a longer limit; locally
# init and the before-snapshot hooks run at a cold start, so the same 10 s hold for them.
# Measured (`make bench`; docs/local-stack.md): init takes 0.3 s uncapped (0.7 s before bytecode is
# written), 2.0 to 2.2 s at `LOCAL_CPU_SHARE=lambda`'s share for 256 MB (0.145 of a core), so
# there an estimated 5 s (0.7 / 0.145) before bytecode is written, the hooks and a loaded
# machine on top: 10 s holds, with less to spare there than Lambda's own functions have.
INIT_TIMEOUT = 10.0


def lambda_error(error_type: str, request_id: str | None, message: str) -> dict[str, str]:
    """An error document as Lambda words its own: `RequestId: <id> Error: <message>`."""
    prefix = f"RequestId: {request_id} " if request_id else ""
    return {"errorType": error_type, "errorMessage": f"{prefix}Error: {message}"}


class FunctionFailed(Exception):
    """The environment failed, not the handler. `error`: what Lambda reports for it, in its
    shape (`errorType`, `errorMessage`, and `stackTrace` where the runtime client sent one)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error['errorType']}: {error.get('errorMessage', '')}")
        self.error = error


class FunctionTimeout(FunctionFailed):
    """The invocation outlived the function's Timeout (or init, or a restore, its limit):
    `Sandbox.Timedout`."""


class FunctionCrashed(FunctionFailed):
    """The environment died (or never started): the runtime client's report of a failed
    init or SnapStart hook where it sent one, else `Runtime.ExitError`."""


class FunctionThrottled(Exception):
    """Every environment the pool may have stayed busy for the whole wait: the invocation was
    not run (the local counterpart of Lambda refusing it with TooManyRequestsException)."""


@dataclass(frozen=True)
class PoolLimits:
    """How far a function's pool grows, and how long an invocation waits beyond that."""

    max_environments: int = DEFAULT_MAX_ENVIRONMENTS
    wait: float | None = None  # seconds; None: the function's Timeout

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PoolLimits:
        """`LOCAL_MAX_ENVIRONMENTS` (a whole number, 1 or more) and `LOCAL_ENVIRONMENT_WAIT`
        (seconds, 0 or more) where set; a bad value stops with a line naming the variable."""
        env = os.environ if env is None else env
        max_environments = env.get("LOCAL_MAX_ENVIRONMENTS", "").strip()
        if max_environments and not re.fullmatch(r"0*[1-9][0-9]*", max_environments):
            raise SystemExit(
                f"LOCAL_MAX_ENVIRONMENTS is a whole number, 1 or more; not {max_environments!r}"
            )
        wait = env.get("LOCAL_ENVIRONMENT_WAIT", "").strip()
        if wait and not re.fullmatch(r"[0-9]+(\.[0-9]*)?", wait):
            raise SystemExit(f"LOCAL_ENVIRONMENT_WAIT is seconds, 0 or more; not {wait!r}")
        return cls(
            max_environments=int(max_environments or DEFAULT_MAX_ENVIRONMENTS),
            wait=float(wait) if wait else None,
        )


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    task_root: Path
    handler: str
    timeout: float
    memory: int
    environment: dict[str, str]
    arn: str = ""

    @classmethod
    def from_template(
        cls,
        template: Template,
        logical_id: str,
        aws_endpoint: str,
        lambda_endpoint: str | None = None,
    ) -> FunctionSpec:
        """`lambda_endpoint`: the local Lambda Invoke API (local/lambda_api.py) the function's
        Lambda client calls, where one runs."""
        props = template.function_properties(logical_id)
        # The function's name as deployed (the template's FunctionName, e.g.
        # `${AWS::StackName}-get-state`); without one, CloudFormation would make one up, and
        # locally the logical id stands in.
        name = str(template.resolve(props["FunctionName"])) if "FunctionName" in props else ""
        name = name or logical_id
        snapstart = template.resolve(props.get("SnapStart") or {}).get("ApplyOn", "None")
        environment = {
            **template.function_environment(logical_id),
            # What the Lambda runtime sets for every function ...
            "_HANDLER": props["Handler"],
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(props["MemorySize"]),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{props['Runtime']}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"
            if snapstart != "None" and snapstart_on()
            else "on-demand",
            "AWS_REGION": template.region,  # the region the template's ARNs were resolved in
            "AWS_DEFAULT_REGION": template.region,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "LAMBDA_TASK_ROOT": str(ROOT / props["CodeUri"]),
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # ... what `sam local` adds (Powertools then skips X-Ray, which is not here) ...
            "AWS_SAM_LOCAL": "true",
            # ... and where AWS is.
            "AWS_ENDPOINT_URL": aws_endpoint,
            **({"AWS_ENDPOINT_URL_LAMBDA": lambda_endpoint} if lambda_endpoint else {}),
        }
        return cls(
            logical_id=logical_id,
            task_root=ROOT / props["CodeUri"],
            handler=props["Handler"],
            timeout=float(template.resolve(props["Timeout"])),
            memory=int(props["MemorySize"]),
            environment=environment,
            arn=f"arn:aws:lambda:{template.region}:{template.account_id}:function:{name}",
        )


def snapstart_on(env: Mapping[str, str] | None = None) -> bool:
    """SnapStart where the template enables it, unless `LOCAL_SNAPSTART=0` (to compare)."""
    value = (os.environ if env is None else env).get("LOCAL_SNAPSTART", "1").strip()
    if value not in ("0", "1"):
        raise SystemExit(f"LOCAL_SNAPSTART is 1 (the template's SnapStart) or 0; not {value!r}")
    return value == "1"


class Environment:
    """One function environment: Lambda's runtime interface client in a process of its own
    (`python -m awslambdaric <handler>` in the function's code directory, the layer on
    PYTHONPATH, this interpreter's packages standing in for the runtime's), talking to a
    Runtime API of its own (`local.runtime_api`)."""

    def __init__(
        self,
        spec: FunctionSpec,
        extra_env: Mapping[str, str],
        stdout: LineWriter,
        cpu: CpuLimit | None = None,
        python_flags: Sequence[str] = (),
    ) -> None:
        """`python_flags`: the interpreter's own, before `-m awslambdaric` (`make bench` runs
        the twin of the build with `-B -S`: no bytecode written, no site-packages, so the
        runtime's packages are the twin's, on PYTHONPATH)."""
        self.spec = spec
        self._group: CpuGroup | None = cpu.new_group() if cpu else None
        self.api = RuntimeApi(spec.arn).start()
        stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        env = {
            **spec.environment,
            "AWS_LAMBDA_RUNTIME_API": self.api.address,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "PYTHONPATH": str(LAYER_PYTHON),  # /opt/python: after the code, before the rest
            **extra_env,
        }
        command = [sys.executable, *python_flags, "-m", "awslambdaric", spec.handler]
        try:
            self.process = _SPAWNER.run(lambda: self._spawn(command, env))
        except BaseException:
            self.api.stop()
            self.leave_group()
            raise
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        # The runtime client writes an error report as one record, its lines joined by "\r"
        # (one CloudWatch event); on a console each is a line of its own.
        self._forwarders = [
            forward_lines(self.process.stdout, _split_records(stdout)),
            forward_lines(self.process.stderr, _split_records(stderr_line)),
        ]

    def _spawn(self, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with contextlib.ExitStack() as joining:
            join = joining.enter_context(self._group.joining()) if self._group else None
            # A terminal's Ctrl-C goes to the whole process group: the stack decides when
            # an environment ends. SIGINT blocked in this thread is blocked in the child,
            # exec and all (a preexec_fn could not set a handler from a thread).
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            try:
                return subprocess.Popen(
                    command,
                    cwd=self.spec.task_root,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    # Safe with the stack's threads: see CpuGroup.joining and _child_setup.
                    preexec_fn=_child_setup(join, os.getpid()),
                )
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def wait_ready(self, request_id: str | None = None, limit: float | None = None) -> None:
        """Block until init is over (the handler module imported, and with SnapStart the
        before-snapshot hooks run), up to `limit` seconds (INIT_TIMEOUT): beyond it,
        FunctionTimeout."""
        limit = INIT_TIMEOUT if limit is None else limit
        timed_out = f"Init timed out after {limit:.2f} seconds"
        self._wait(self.api.ready, time.monotonic() + limit, request_id, timed_out)

    def invoke(self, event: dict[str, Any], request_id: str) -> dict[str, Any]:
        """The invocation's reply. Its Timeout runs from when the runtime client takes it
        (`next`), as the deadline the client's context gives the handler does; before that,
        with SnapStart, come the after-restore hooks, with a limit of their own
        (RESTORE_TIMEOUT, as Lambda's)."""
        invocation = Invocation(request_id, json.dumps(event).encode(), self.spec.timeout)
        self.api.submit(invocation)
        handover = time.monotonic() + RESTORE_TIMEOUT
        self._wait(
            invocation.handed_out,
            handover,
            request_id,
            f"Restore timed out after {RESTORE_TIMEOUT:.2f} seconds",
        )
        assert invocation.deadline is not None
        self._wait(invocation.done, invocation.deadline, request_id)
        assert invocation.reply is not None
        return invocation.reply

    def _wait(
        self,
        done: threading.Event,
        deadline: float,
        request_id: str | None,
        timed_out: str = "",
    ) -> None:
        """Until `done`, or the process ends (FunctionCrashed: its init error when it
        reported one, else Lambda's `Runtime.ExitError`), or the `time.monotonic()`
        `deadline` passes (FunctionTimeout, `Sandbox.Timedout`, with `timed_out` or the
        Task's wording); either ends the environment."""
        while not done.wait(0.02):
            if not self.alive():
                self.stop()
                if self.api.init_error is not None:
                    raise FunctionCrashed(self.api.init_error)
                raise FunctionCrashed(
                    lambda_error(
                        "Runtime.ExitError",
                        request_id,
                        f"Runtime exited with error: {_exit_status(self.process.returncode)}",
                    )
                )
            if time.monotonic() >= deadline:
                self.stop()
                message = timed_out or f"Task timed out after {self.spec.timeout:.2f} seconds"
                raise FunctionTimeout(lambda_error("Sandbox.Timedout", request_id, message))

    def alive(self) -> bool:
        return self.process.poll() is None

    def end_input(self) -> None:
        """Ends the process now, as Lambda ends an environment (no shutdown phase without
        extensions): the stack ends environments only when they are idle or it stops."""
        # The process first: a client released from `restore/next` or `next` must not go on
        # (an idle SnapStart environment would run its after-restore hooks); then the Runtime
        # API, whose waiting requests now answer 410.
        if self.alive():
            with contextlib.suppress(OSError):
                self.process.kill()
        self.api.close()

    def wait(self) -> None:
        """Waits for the process to end and for its last output lines."""
        self.process.wait()
        self.api.stop()
        for forwarder in self._forwarders:
            forwarder.join(timeout=2)
        self.leave_group()

    def leave_group(self) -> None:
        """Removes its CPU group, if any, once the process has ended."""
        if self._group is not None:
            self._group.remove()
            self._group = None

    def stop(self) -> None:
        self.end_input()
        self.wait()


def _death_signal() -> Callable[[], object] | None:
    """Linux's prctl(PR_SET_PDEATHSIG, SIGKILL) for a child, looked up before any fork (the
    lookup may take the loader's lock; the call takes none); None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return lambda: prctl(1, signal.SIGKILL, 0, 0, 0)  # 1: PR_SET_PDEATHSIG


_SET_DEATH_SIGNAL = _death_signal()


def _child_setup(join: Callable[[], object] | None, parent: int) -> Callable[[], None]:
    """The child's setup between fork and exec: into its CPU group, if any; then, on Linux,
    SIGKILL when the stack dies, however it dies (a SIGKILLed stack would otherwise leave its
    environments running, one of them maybe busy), and at once if it already has."""

    def setup() -> None:
        if join is not None:
            join()
        if _SET_DEATH_SIGNAL is not None:
            _SET_DEATH_SIGNAL()
            if os.getppid() != parent:  # the stack died before the prctl
                os.kill(os.getpid(), signal.SIGKILL)

    return setup


class _Spawner:
    """Starts the environments' processes, all from one thread that lives as long as the
    stack: Linux sends a child its PR_SET_PDEATHSIG when the *thread* that forked it ends,
    not its process, and the gateway starts environments from request threads, which end."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def run(self, job: Callable[[], T]) -> T:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="environment-spawner", daemon=True
                )
                self._thread.start()
        done: Future[T] = Future()
        self._jobs.put((job, done))
        return done.result()

    def _serve(self) -> None:
        while True:
            job, done = self._jobs.get()
            try:
                done.set_result(job())
            except BaseException as failure:  # noqa: BLE001 - the caller's to handle
                done.set_exception(failure)


_SPAWNER = _Spawner()


def _exit_status(code: int) -> str:
    """A process's end as Lambda words it (Go's): `exit status 1`, `signal: killed`."""
    if code < 0:
        return f"signal: {signal.strsignal(-code) or -code}".lower()
    return f"exit status {code}"


def _split_records(write: LineWriter) -> LineWriter:
    def lines(record: str) -> None:
        for line in record.split("\r"):
            write(line)

    return lines


class FunctionPool:
    """The environments of one function: an idle one is reused; while fewer than
    `max_environments` exist, another is started (a cold start); beyond that an invocation
    waits up to `wait` seconds (None: the function's Timeout) for one to come free, then
    raises FunctionThrottled. The cap holds exactly: a slot is taken under the lock before
    its process starts, and given back when the environment ends."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        max_environments: int = DEFAULT_MAX_ENVIRONMENTS,
        wait: float | None = None,
        extra_env: Mapping[str, str] | None = None,
        stdout: LineWriter = stdout_line,
        cpu: CpuLimit | None = None,
    ) -> None:
        """`stdout`: where the lines the function prints go (default: our stdout; what it
        writes to stderr goes to our stderr); `cpu`: each environment's share of a core
        (default: uncapped)."""
        self.spec = spec
        self._cpu = cpu
        self.max_environments = max_environments
        self.wait = spec.timeout if wait is None else wait
        self._stdout = stdout
        self._extra_env = dict(extra_env or {})
        self._idle: list[Environment] = []
        self._all: list[Environment] = []
        self._slots = 0  # environments alive or starting: never above max_environments
        self._started = 0
        self._waiting = 0
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)  # an environment or a slot came free
        self._closed = False

    @property
    def started(self) -> int:
        """How many environments this pool has started (cold starts), ended ones included."""
        return self._started

    @property
    def waiting(self) -> int:
        """How many invocations are waiting for an environment now."""
        return self._waiting

    def warm(self) -> None:
        """Start one environment now, so the first request does not pay the cold start."""
        with self._lock:
            if self._slots >= self.max_environments:
                return
            self._slots += 1
        environment = self._start()
        try:
            environment.wait_ready()
        except BaseException:
            self._discard(environment)
            raise
        self._release(environment)

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
        """The handler's answer as `{"result": …}` or `{"errorType", "errorMessage", …}`;
        FunctionThrottled when no environment came free within the wait."""
        request_id = request_id or str(uuid.uuid4())
        environment = self._acquire()
        try:
            environment.wait_ready(request_id)
            reply = environment.invoke(event, request_id)
        except BaseException:  # a timeout, a crash, or a pipe that broke: its slot comes back
            self._discard(environment)
            raise
        self._release(environment)
        return reply

    def close(self) -> None:
        close_pools([self])

    def _close(self) -> list[Environment]:
        """Takes no more invocations; returns every environment, for `close_pools` to end."""
        with self._lock:
            self._closed = True
            environments, self._all, self._idle = self._all, [], []
            self._freed.notify_all()  # the waiting invocations give up
        return environments

    def _acquire(self) -> Environment:
        deadline = time.monotonic() + self.wait
        with self._lock:
            while True:
                if self._closed:
                    raise FunctionCrashed(
                        {"errorType": "ServiceException", "errorMessage": "the stack is stopping"}
                    )
                while self._idle:
                    environment = self._idle.pop()
                    if environment.alive():
                        return environment
                    self._forget(environment)
                if self._slots < self.max_environments:
                    self._slots += 1  # reserved before the process starts: the cap holds
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FunctionThrottled(
                        f"{self.spec.logical_id}: all {self.max_environments} environments"
                        f" stayed busy for {self.wait:g} s (LOCAL_MAX_ENVIRONMENTS,"
                        " LOCAL_ENVIRONMENT_WAIT)"
                    )
                self._waiting += 1
                try:
                    self._freed.wait(remaining)
                finally:
                    self._waiting -= 1
        return self._start()

    def _start(self) -> Environment:
        """A new environment in the slot the caller reserved (given back if it fails)."""
        try:
            environment = Environment(self.spec, self._extra_env, self._stdout, self._cpu)
        except BaseException:
            with self._lock:
                self._slots -= 1
                self._freed.notify()
            raise
        with self._lock:
            self._all.append(environment)
            self._started += 1
        return environment

    def _release(self, environment: Environment) -> None:
        with self._lock:
            closed = self._closed  # for good: _close already took every environment out
            if not closed:
                self._idle.append(environment)
                self._freed.notify()
        if closed:  # stopped outside the lock: it may take seconds
            environment.stop()

    def _discard(self, environment: Environment) -> None:
        environment.stop()
        with self._lock:
            self._forget(environment)

    def _forget(self, environment: Environment) -> None:
        """An environment that ended gives its slot back (the lock is held), and its CPU
        group (an idle one found dead was never waited for)."""
        environment.leave_group()
        if environment in self._all:
            self._all.remove(environment)
            self._slots -= 1
            self._freed.notify()


def close_pools(pools: Iterable[FunctionPool]) -> None:
    """Ends every environment of every pool: all their inputs closed first, then all waited
    for, so stopping takes as long as the slowest environment, not as long as all of them."""
    environments = [environment for pool in pools for environment in pool._close()]
    for environment in environments:
        environment.end_input()
    for environment in environments:
        environment.wait()


def invoker(pool: FunctionPool) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """`pool`'s invocations as the local Lambda Invoke API runs them: a reply, and the failure
    of the environment itself as an error reply (never raised: a scheduled run's thread)."""

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        try:
            return pool.invoke(event)
        except FunctionFailed as failure:  # Lambda's report: Sandbox.Timedout, an init error …
            return failure.error
        except Exception as failure:  # noqa: BLE001 - an environment that timed out, crashed
            # or could not be had, or a pipe that broke while the stack stops
            return {"errorType": type(failure).__name__, "errorMessage": str(failure)}

    return invoke
