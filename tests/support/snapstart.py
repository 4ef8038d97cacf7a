"""SnapStart in tests: the hooks a function registers with `snapshot_restore_py` (AWS's own,
installed as in Lambda's Python runtime), run by the runtime interface client's own hook
runner, a guard that refuses and records every attempt to reach the network, and a walk over
the strings an object graph holds.

Run as a script, it is a function environment with X-Ray on, as in Lambda: it imports the
function module at the path given, runs the before-snapshot hooks inside the guard, and prints
what they attempted and whether the tracer was built (the environment must hold the function's
settings).
"""

from __future__ import annotations

import gc
import importlib.util
import json
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any

import snapshot_restore_py
from awslambdaric import lambda_runtime_hooks_runner

Hook = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class RuntimeHooks:
    """The hooks registered since `clear()`, and the runtime client's runs of them."""

    @property
    def before(self) -> list[Hook]:
        return snapshot_restore_py.get_before_snapshot()

    @property
    def after(self) -> list[Hook]:
        return snapshot_restore_py.get_after_restore()

    def clear(self) -> None:
        """Forgets every hook registered so far (the registries are the module's globals)."""
        self.before.clear()
        self.after.clear()

    def snapshot(self) -> None:
        """The before-snapshot hooks, in reverse order of registration (each once: the runner
        takes them off the registry)."""
        lambda_runtime_hooks_runner.run_before_snapshot()

    def restore(self) -> None:
        """The after-restore hooks, in order of registration."""
        lambda_runtime_hooks_runner.run_after_restore()


@contextmanager
def network_refused() -> Iterator[list[str]]:
    """Inside, every connection, name lookup or datagram fails with OSError; the list yielded
    names each attempt."""
    attempts: list[str] = []

    def refuse(name: str) -> Callable[..., Any]:
        def refused(*args: Any, **_kwargs: Any) -> Any:
            attempts.append(f"{name}{args[1:] if name.startswith('socket.') else args}")
            raise OSError(f"{name} refused: no network before a snapshot")

        return refused

    patched = {
        (socket.socket, "connect"): refuse("socket.connect"),
        (socket.socket, "connect_ex"): refuse("socket.connect_ex"),
        (socket.socket, "sendto"): refuse("socket.sendto"),
        (socket, "create_connection"): refuse("create_connection"),
        (socket, "getaddrinfo"): refuse("getaddrinfo"),
    }
    saved = {key: getattr(*key) for key in patched}
    for (owner, name), replacement in patched.items():
        setattr(owner, name, replacement)
    try:
        yield attempts
    finally:
        for (owner, name), original in saved.items():
            setattr(owner, name, original)


def reachable_strings(*roots: Any) -> Iterator[str]:
    """Every str (and bytes, as Latin-1) reachable from `roots` through containers, instance
    state and closures. Modules and classes are not entered, nor a function's globals: what is
    walked is the state the roots hold, not the whole interpreter."""
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, ModuleType | type):
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            yield obj
        elif isinstance(obj, bytes | bytearray):
            yield bytes(obj).decode("latin-1")
        elif isinstance(obj, FunctionType):
            cells = [c.cell_contents for c in obj.__closure__ or () if _filled(c)]
            stack += [*cells, obj.__defaults__, obj.__kwdefaults__, obj.__dict__]
        else:
            stack += gc.get_referents(obj)


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:  # an empty cell
        return False
    return True


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _main(app_path: str) -> None:
    hooks = RuntimeHooks()
    _load(Path(app_path))
    registered = len(hooks.before)
    with network_refused() as attempts:
        hooks.snapshot()
    from offer_state.observability import _tracer

    built = _tracer.cache_info().currsize == 1
    print(json.dumps({"attempts": attempts, "tracer_built": built, "hooks": registered}))


if __name__ == "__main__":
    _main(sys.argv[1])
