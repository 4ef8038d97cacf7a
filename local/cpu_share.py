"""CPU as Lambda gives it. Lambda's rule: a function gets CPU in proportion to its memory, one
vCPU at 1,769 MB, so its share of one core is MemorySize / 1769 (256 MB: 0.145 of a core;
1,024 MB: 0.579; 1,769 MB: 1).

Here a process gets such a share from a cgroup of its own with a CPU quota over a 100 ms period
(the kernel's default): cgroup v2's `cpu.max`, or cgroup v1's `cpu` controller
(`cpu.cfs_quota_us` per `cpu.cfs_period_us`). Who uses it:

- `LOCAL_CPU_SHARE` (`make run`, `make load`): each function environment in a group of its own
  at a fraction of a core (`0.15`), or at its function's share by the rule above (`lambda`);
- `make bench`: its `lambda_cpu` figures, measured at the shares of 256 to 1,769 MB;
- `python -m local.cpu_share run --share 0.5 -- <command>`: puts itself in a group at that share
  and execs the command, so the command and every process it starts run in it (`make
  test-slow` runs each test worker so); `check --share 0.5` says in one line whether it can,
  `sweep` removes the groups `run` leaves.

It needs root (or a delegated cgroup) and v2's `cpu` or v1's `cpu` controller writable. Where
the machine does not allow it, the caller prints one line saying why and runs uncapped: a
newcomer's laptop need not support it.

A share is at least 0.01 (the kernel's smallest quota: 1 ms a period) and at most the cores
this process may run on: a quota above them never binds, so figures measured under it would
claim a share they did not get; such a value is refused, not run uncapped.

Groups are named `offer-state-<pid of their creator>-<n>`, at the hierarchy's root, and removed
when their process ends. The group of a creator that ended without removing it (`run`'s, whose
creator became the command; one killed outright) is removed by the next process that opens the
hierarchy, or by `python -m local.cpu_share sweep`, once it is empty and its creator gone.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

LAMBDA_MB_PER_VCPU = 1769
LAMBDA = "lambda"  # LOCAL_CPU_SHARE's value for Lambda's rule
VARIABLE = "LOCAL_CPU_SHARE"
PERIOD_US = 100_000
MIN_SHARE = 0.01  # the kernel refuses a quota under 1 ms (1000 us) a period
GROUP_PREFIX = "offer-state-"
_GROUP_NAME = re.compile(re.escape(GROUP_PREFIX) + r"([0-9]+)-[0-9]+")
_FRACTION = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")
_numbers = itertools.count(1)


class CannotCap(Exception):
    """This machine (or this user) cannot put a process under a CPU quota; the message says
    why."""


def lambda_share(memory_mb: int) -> float:
    """The share of one core Lambda gives a function of `memory_mb` MB."""
    return memory_mb / LAMBDA_MB_PER_VCPU


def machine_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))


def check_share(share: float, cores: int) -> float:
    """`share`, if a quota can give it on `cores` cores; ValueError with a sentence otherwise."""
    if share < MIN_SHARE:
        raise ValueError(
            f"{share:.4g} of a core is under {MIN_SHARE} (the kernel's smallest quota, 1 ms a"
            " 100 ms period)"
        )
    if share > cores:
        raise ValueError(
            f"{share:.4g} of a core is more than the {cores} cores here: the cap would never bind"
        )
    return share


def parse_share(text: str, cores: int) -> float:
    """A share of a core as typed (`0.15`, `.5`, `1`); ValueError with a sentence otherwise."""
    if not _FRACTION.fullmatch(text.strip()):
        raise ValueError(f"a share of a core is a number such as 0.15, not {text.strip()!r}")
    return check_share(float(text), cores)


@dataclass(frozen=True)
class ShareSetting:
    """`LOCAL_CPU_SHARE` as set: one share for every function (`fixed`), or Lambda's rule from
    each function's MemorySize (`fixed` None)."""

    text: str
    fixed: float | None
    cores: int = field(default_factory=machine_cores)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, cores: int | None = None
    ) -> ShareSetting | None:
        """None where unset or blank; a bad value stops with a line naming the variable."""
        text = (os.environ if env is None else env).get(VARIABLE, "").strip()
        if not text:
            return None
        cores = machine_cores() if cores is None else cores
        if text.lower() == LAMBDA:
            return cls(text, None, cores)
        try:
            return cls(text, parse_share(text, cores), cores)
        except ValueError as exc:
            raise SystemExit(f"{VARIABLE} is a share of a core or {LAMBDA!r}: {exc}") from None

    def share_for(self, function: str, memory_mb: int) -> float:
        """The share of a function of `memory_mb` MB; with `lambda`, a MemorySize whose share
        no quota here can give stops with a line naming the function."""
        if self.fixed is not None:
            return self.fixed
        try:
            return check_share(lambda_share(memory_mb), self.cores)
        except ValueError as exc:
            raise SystemExit(
                f"{VARIABLE}={self.text}: {function}'s MemorySize {memory_mb} MB gives {exc}"
            ) from None


def _write(path: Path, text: str) -> None:
    # No O_CREAT: in a directory that is not a cgroup the file is missing, and that must fail
    # rather than make an ordinary file.
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@dataclass(frozen=True)
class CpuGroup:
    """One cgroup with a CPU quota."""

    path: Path
    version: int

    def limit(self, share: float) -> None:
        quota = round(share * PERIOD_US)
        if self.version == 2:
            _write(self.path / "cpu.max", f"{quota} {PERIOD_US}")
        else:
            _write(self.path / "cpu.cfs_period_us", str(PERIOD_US))
            _write(self.path / "cpu.cfs_quota_us", str(quota))

    @contextlib.contextmanager
    def joining(self) -> Iterator[Callable[[], object]]:
        """A `preexec_fn` for Popen that puts the child in this group, for the duration of the
        block (the group's `cgroup.procs` is open meanwhile).

        The child joins between fork and exec, so every instruction of the program it becomes
        runs under the quota: an interpreter's start is part of the cold start measured.
        Writing its pid from the parent once Popen returns would leave its first milliseconds
        uncapped, more on a busy machine. preexec_fn is unsafe in a threaded program when it
        needs a lock that another thread held at the fork; this one is a single write(2) of
        "0" (the writing process itself) to a descriptor opened before the fork, which takes
        none, and the descriptor is close-on-exec, so the program never sees it."""
        fd = os.open(self.path / "cgroup.procs", os.O_WRONLY)
        try:
            yield lambda: os.write(fd, b"0")
        finally:
            os.close(fd)

    def processes(self) -> list[int]:
        return [int(pid) for pid in (self.path / "cgroup.procs").read_text().split()]

    def stat(self) -> dict[str, int]:
        """`cpu.stat`: periods with the quota in force (`nr_periods`), those that ran out of it
        (`nr_throttled`), ..."""
        lines = (self.path / "cpu.stat").read_text().splitlines()
        return {name: int(value) for name, value in (line.split() for line in lines)}

    def remove(self) -> bool:
        """Removes the group once its processes are gone (a process that just ended may take
        a moment to leave it); False if one is still in it after a second."""
        for _ in range(20):
            try:
                self.path.rmdir()
                return True
            except FileNotFoundError:
                return True
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
            time.sleep(0.05)
        return False


@dataclass(frozen=True)
class Hierarchy:
    """A cgroup hierarchy with a CPU controller; new groups go at its root."""

    root: Path
    version: int

    def __str__(self) -> str:
        return f"cgroup v{self.version} at {self.root}"

    def create(self, share: float) -> CpuGroup:
        group = CpuGroup(self.root / f"{GROUP_PREFIX}{os.getpid()}-{next(_numbers)}", self.version)
        group.path.mkdir()
        try:
            group.limit(share)
        except BaseException:
            group.remove()
            raise
        return group

    def sweep(self, wait: float = 0) -> None:
        """Removes the groups of creators that ended without removing them: once empty (waiting
        up to `wait` seconds for their last processes to end), and only if their creator is
        gone."""
        deadline = time.monotonic() + wait
        while True:
            busy = False
            for path in self.root.glob(f"{GROUP_PREFIX}*"):
                match = _GROUP_NAME.fullmatch(path.name)
                if match and not _alive(int(match[1])):
                    try:
                        path.rmdir()
                    except OSError:  # not empty yet
                        busy = True
            if not busy or time.monotonic() >= deadline:
                return
            time.sleep(0.1)


def find_hierarchy(mounts: str | None = None) -> Hierarchy:
    """The cgroup hierarchy with a CPU controller, from /proc/self/mounts (or `mounts`): v2
    where its root offers `cpu`, else v1's `cpu`; CannotCap when neither is mounted."""
    if mounts is None:
        mounts = Path("/proc/self/mounts").read_text()
    v1 = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        root, kind, options = Path(fields[1]), fields[2], fields[3].split(",")
        if kind == "cgroup2":
            with contextlib.suppress(OSError):
                if "cpu" in (root / "cgroup.controllers").read_text().split():
                    return Hierarchy(root, 2)
        elif kind == "cgroup" and "cpu" in options and v1 is None:
            v1 = Hierarchy(root, 1)
    if v1 is None:
        raise CannotCap("no cgroup CPU controller is mounted (neither v2's cpu.max nor v1's cpu)")
    return v1


def usable(hierarchy: Hierarchy | None = None) -> Hierarchy:
    """The hierarchy (by default the one mounted) once a group was made, given a quota and
    removed in it; CannotCap saying why otherwise."""
    hierarchy = find_hierarchy() if hierarchy is None else hierarchy
    try:
        hierarchy.sweep()
        if hierarchy.version == 2:
            # v2 gives a child group `cpu.max` only when its parent's subtree has `cpu`.
            control = hierarchy.root / "cgroup.subtree_control"
            if "cpu" not in control.read_text().split():
                _write(control, "+cpu")
        hierarchy.create(1.0).remove()
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        root = "" if os.geteuid() == 0 else "; it needs root"
        raise CannotCap(f"{hierarchy}: {exc.strerror or exc}{where}{root}") from None
    return hierarchy


@dataclass(frozen=True)
class CpuLimit:
    """A share of a core for each process started under it, in a group of its own."""

    hierarchy: Hierarchy
    share: float

    def new_group(self) -> CpuGroup:
        return self.hierarchy.create(self.share)

    @contextlib.contextmanager
    def group(self) -> Iterator[CpuGroup]:
        """A group of its own for the block, removed after it."""
        group = self.new_group()
        try:
            yield group
        finally:
            group.remove()


def function_limits(
    memory: Mapping[str, int], log: Callable[[str], None], env: Mapping[str, str] | None = None
) -> dict[str, CpuLimit]:
    """`LOCAL_CPU_SHARE` for functions of these MemorySizes (by logical id): each function's
    limit, with one line to `log` saying what is capped, or why nothing is; {} when unset."""
    setting = ShareSetting.from_env(env)
    if setting is None:
        return {}
    shares = {function: setting.share_for(function, mb) for function, mb in memory.items()}
    try:
        hierarchy = usable()
    except CannotCap as exc:
        log(f"{VARIABLE}={setting.text}: cannot cap CPU here ({exc}); the functions run uncapped")
        return {}
    each = ", ".join(f"{function} {share:.3f}" for function, share in shares.items())
    log(
        f"{VARIABLE}={setting.text}: each function environment in a cgroup of its own"
        f" ({each} of a core; {hierarchy})"
    )
    return {function: CpuLimit(hierarchy, share) for function, share in shares.items()}


def _run(share: float, command: list[str], quiet: bool) -> NoReturn:
    """Puts this process in a group of its own at `share` and becomes the command (exec), so
    the command and all it starts run in the group; where it cannot cap, one line (unless
    `quiet`) and the command uncapped.

    Exec rather than wait for the command: whoever started us then signals, waits for and
    kills the command itself. Run as each pytest-xdist worker's Python (`make test-slow`),
    a waiting wrapper was what execnet's exit SIGKILLed after its 1 s grace, leaving the
    worker to finish alone in a group nobody removed. The group outlives us, empty once the
    command and what it started end; `sweep` (and any later opener) removes it."""
    try:
        group = usable().create(share)
        _write(group.path / "cgroup.procs", "0")  # 0: this process
    except (CannotCap, OSError) as exc:
        if not quiet:
            print(f"cannot cap CPU here ({exc}); running uncapped", file=sys.stderr, flush=True)
    os.execvp(command[0], command)  # noqa: S606 - the command as the caller gave it


def main(argv: list[str] | None = None) -> int:
    import argparse

    args = sys.argv[1:] if argv is None else argv
    command: list[str] = []
    if "--" in args:
        split = args.index("--")
        args, command = args[:split], args[split + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m local.cpu_share",
        description="Run a command at a share of one CPU core (cgroup v2 cpu.max or v1 cpu).",
        epilog="run: python -m local.cpu_share run --share 0.5 -- <command>",
    )
    parser.add_argument("action", choices=("run", "check", "sweep"))
    parser.add_argument("--share", help="run, check: a share of one core, such as 0.5")
    parser.add_argument("--quiet", action="store_true", help="run: no line when it cannot cap")
    options = parser.parse_args(args)
    if options.action == "sweep":
        # The groups of ended creators, once their last processes end (10 s at most); nothing
        # to sweep where no group can be made.
        with contextlib.suppress(CannotCap, OSError):
            find_hierarchy().sweep(wait=10)
        return 0
    if options.share is None:
        parser.error(f"{options.action}: --share is required")
    try:
        share = parse_share(options.share, machine_cores())
    except ValueError as exc:
        parser.error(f"--share: {exc}")
    if options.action == "check":
        try:
            print(f"can cap CPU here: {share:g} of a core per process ({usable()})", flush=True)
        except CannotCap as exc:
            print(f"cannot cap CPU here ({exc}); running uncapped", flush=True)
        return 0
    if not command:
        parser.error("run: give the command after --")
    return _run(share, command, options.quiet)


if __name__ == "__main__":
    raise SystemExit(main())
