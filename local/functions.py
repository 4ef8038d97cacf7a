"""The template's functions as local Lambda execution environments (worker processes).

Each environment is a process running `local/lambda_runtime.py` with exactly the environment
variables template.yaml gives the function (resolved to the local resources), plus what the
Lambda runtime itself sets and `AWS_ENDPOINT_URL` pointing at the AWS emulation. One
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
Workers ignore SIGINT (a terminal's Ctrl-C reaches the whole process group): the stack ends
them by closing their stdin, all at once (`close_pools`).

With a CPU limit (`LOCAL_CPU_SHARE`, `local.cpu_share`), each environment runs in a cgroup of
its own at its share of a core, from its first instruction; the group goes when it ends.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.console import LineWriter, forward_lines, stderr_line, stdout_line
from local.cpu_share import CpuGroup, CpuLimit
from local.lambda_runtime import read_message, write_message
from local.template import ROOT, Template

RUNTIME_SCRIPT = Path(__file__).with_name("lambda_runtime.py")
LAYER_PYTHON = ROOT / "layers" / "offer_state" / "python"
# Environments per function, for this project's 2-core machine: `make load` at concurrency 16
# measured about the same throughput with 2 and 4 per function (84 to 91 requests/s), and
# under half of it with 8 (37), whose extra cold starts compete for the two cores. 4 rather
# than 2: a burst of 4 runs at once, as on Lambda, and two slow invocations (an AIR MILES
# delay) do not hold up all of a function's requests; 8 processes of about 100 MB in all.
DEFAULT_MAX_ENVIRONMENTS = 4


class FunctionTimeout(Exception):
    """The invocation outlived the function's Timeout."""


class FunctionCrashed(Exception):
    """The environment died (or never started)."""


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
        environment = {
            **template.function_environment(logical_id),
            # What the Lambda runtime sets for every function ...
            "AWS_LAMBDA_FUNCTION_NAME": logical_id,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(props["MemorySize"]),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{props['Runtime']}",
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
        )


class _Environment:
    """One worker process: one function environment."""

    def __init__(
        self,
        spec: FunctionSpec,
        extra_env: Mapping[str, str],
        stdout: LineWriter,
        cpu: CpuLimit | None = None,
    ) -> None:
        self.spec = spec
        self._group: CpuGroup | None = cpu.new_group() if cpu else None
        read_fd, write_fd = os.pipe()
        try:
            with contextlib.ExitStack() as joining:
                join = joining.enter_context(self._group.joining()) if self._group else None
                self.process = subprocess.Popen(
                    [
                        sys.executable,
                        str(RUNTIME_SCRIPT),
                        str(spec.task_root),
                        str(LAYER_PYTHON),
                        spec.handler,
                        str(write_fd),
                    ],
                    env={**spec.environment, **extra_env},
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    pass_fds=(write_fd,),
                    preexec_fn=join,  # safe with the stack's threads: see CpuGroup.joining
                )
        except BaseException:
            self.leave_group()
            raise
        finally:
            os.close(write_fd)
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._forwarders = [
            forward_lines(self.process.stdout, stdout),
            forward_lines(self.process.stderr, stderr_line),
        ]
        self._replies = os.fdopen(read_fd, "rb")
        self._ready = threading.Event()

    def wait_ready(self, timeout: float) -> None:
        """Block until the handler module is imported (the cold start is over)."""
        if self._ready.is_set():
            return
        message = self._read(timeout)
        if not (isinstance(message, dict) and message.get("ready")):
            raise FunctionCrashed(f"{self.spec.logical_id} did not start")
        self._ready.set()

    def invoke(self, event: dict[str, Any], request_id: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        write_message(
            self.process.stdin,
            {"event": event, "requestId": request_id, "timeout": self.spec.timeout},
        )
        return self._read(self.spec.timeout)

    def _read(self, timeout: float) -> Any:
        box: list[Any] = []
        reader = threading.Thread(target=lambda: box.append(read_message(self._replies)))
        reader.daemon = True
        reader.start()
        reader.join(timeout)
        if reader.is_alive():
            self.stop()
            raise FunctionTimeout(f"Task timed out after {timeout:.2f} seconds")
        if not box or box[0] is None:
            self.stop()
            raise FunctionCrashed(f"{self.spec.logical_id} exited (code {self.process.poll()})")
        return box[0]

    def alive(self) -> bool:
        return self.process.poll() is None

    def end_input(self) -> None:
        """Closes its stdin: the environment ends once the invocation under way is over."""
        if self.process.stdin and not self.process.stdin.closed:
            with contextlib.suppress(OSError):
                self.process.stdin.close()

    def wait(self) -> None:
        """Waits for the process to end (killed after 2 s) and for its last output lines."""
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for forwarder in self._forwarders:
            forwarder.join(timeout=2)
        self._replies.close()
        self.leave_group()

    def leave_group(self) -> None:
        """Removes its CPU group, if any, once the process has ended."""
        if self._group is not None:
            self._group.remove()
            self._group = None

    def stop(self) -> None:
        self.end_input()
        self.wait()


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
        self._idle: list[_Environment] = []
        self._all: list[_Environment] = []
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
            environment.wait_ready(60)
        except BaseException:
            self._discard(environment)
            raise
        self._release(environment)

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
        """The handler's answer as `{"result": …}` or `{"errorType", "errorMessage", …}`;
        FunctionThrottled when no environment came free within the wait."""
        environment = self._acquire()
        try:
            environment.wait_ready(60)
            reply = environment.invoke(event, request_id or str(uuid.uuid4()))
        except BaseException:  # a timeout, a crash, or a pipe that broke: its slot comes back
            self._discard(environment)
            raise
        self._release(environment)
        return reply

    def close(self) -> None:
        close_pools([self])

    def _close(self) -> list[_Environment]:
        """Takes no more invocations; returns every environment, for `close_pools` to end."""
        with self._lock:
            self._closed = True
            environments, self._all, self._idle = self._all, [], []
            self._freed.notify_all()  # the waiting invocations give up
        return environments

    def _acquire(self) -> _Environment:
        deadline = time.monotonic() + self.wait
        with self._lock:
            while True:
                if self._closed:
                    raise FunctionCrashed("the local stack is stopping")
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

    def _start(self) -> _Environment:
        """A new environment in the slot the caller reserved (given back if it fails)."""
        try:
            environment = _Environment(self.spec, self._extra_env, self._stdout, self._cpu)
        except BaseException:
            with self._lock:
                self._slots -= 1
                self._freed.notify()
            raise
        with self._lock:
            self._all.append(environment)
            self._started += 1
        return environment

    def _release(self, environment: _Environment) -> None:
        with self._lock:
            closed = self._closed  # for good: _close already took every environment out
            if not closed:
                self._idle.append(environment)
                self._freed.notify()
        if closed:  # stopped outside the lock: it may take seconds
            environment.stop()

    def _discard(self, environment: _Environment) -> None:
        environment.stop()
        with self._lock:
            self._forget(environment)

    def _forget(self, environment: _Environment) -> None:
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
        except Exception as failure:  # noqa: BLE001 - an environment that timed out, crashed
            # or could not be had, or a pipe that broke while the stack stops
            return {"errorType": type(failure).__name__, "errorMessage": str(failure)}

    return invoke
