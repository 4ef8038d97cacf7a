"""Injected faults: which calls misbehave, how, and for how long.

A fault names one counted endpoint or `*`; a fault for the endpoint itself beats `*`, and among
several the first registered that still has calls left applies. `count` absent means: until
cleared. `timeout` faults hold their connections, and `drip` faults pace theirs, on an event
that clearing (and stopping the sandbox) sets, so a held or dripping client is let go at once
rather than after HOLD_SECONDS or the whole drip.

`applied` (PUT faults of the modes in APPLIED_MODES only) says whether the change is stored
before the answer misbehaves; false, the default, keeps what these modes always did: `delay`
stores it once the wait is over (the endpoint runs then), the others never store it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local.sandbox.calls import ENDPOINTS
from local.sandbox.config import is_json_int

FAULT_ENDPOINTS = (*ENDPOINTS, "*")
MODES = ("status", "delay", "timeout", "malformed", "reset", "truncate", "drip", "badGzip")
FIELDS = (
    "endpoint",
    "mode",
    "status",
    "delayMs",
    "intervalMs",
    "applied",
    "count",
    "retryAfter",
)
# The modes after which a PUT may or may not have been stored: `applied` chooses.
APPLIED_MODES = ("delay", "timeout", "reset", "truncate", "drip")
HOLD_SECONDS = 120.0
DEFAULT_RETRY_AFTER = 1
DEFAULT_INTERVAL_MS = 200


@dataclass(frozen=True)
class ModeField:
    """The field a mode is about: required (no default), or filled in when absent."""

    name: str
    default: Any = None
    # True: refused with any other mode; False: any mode may carry it, and it is stored.
    only_this_mode: bool = False


# Each mode's own field, in the order they are checked (the first bad one is the one named).
# A table rather than one branch per mode: what a mode needs is read off in one place.
MODE_FIELDS = {
    "status": ModeField("status"),
    "delay": ModeField("delayMs"),
    "drip": ModeField("intervalMs", default=DEFAULT_INTERVAL_MS, only_this_mode=True),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# What a value of each field must be, and the sentence a bad one gets: the control API answers
# it as its 400, a contract checked from outside, so the sentences are kept word for word.
VALUE_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "status": (
        lambda value: is_json_int(value) and 100 <= value <= 599,
        "status must be an integer from 100 to 599.",
    ),
    "delayMs": (
        lambda value: _is_number(value) and value >= 0,
        "delayMs must be a number of milliseconds, 0 or more.",
    ),
    "intervalMs": (
        lambda value: _is_number(value) and value >= 1,
        "intervalMs must be a number of milliseconds, 1 or more.",
    ),
    "applied": (lambda value: isinstance(value, bool), "applied must be true or false."),
    "count": (lambda value: is_json_int(value) and value >= 1, "count must be a positive integer."),
    "retryAfter": (
        lambda value: is_json_int(value) and value >= 0,
        "retryAfter must be a whole number of seconds, 0 or more.",
    ),
}


def validate(spec: Any) -> dict[str, Any]:
    """The fault as it will be stored; raises ValueError with a sentence on bad input."""
    fault = _endpoint_and_mode(spec)
    _add_mode_fields(spec, fault)
    _add_applied(spec.get("applied"), fault)
    count = spec.get("count")
    if count is not None:
        fault["count"] = _checked("count", count)
        fault["remaining"] = count
    fault["retryAfter"] = _checked("retryAfter", spec.get("retryAfter", DEFAULT_RETRY_AFTER))
    return fault


def _endpoint_and_mode(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise ValueError("The body must be a JSON object.")
    unknown = sorted(set(spec) - set(FIELDS))
    if unknown:
        raise ValueError(f"Unknown fault fields: {', '.join(unknown)}.")
    if spec.get("endpoint") not in FAULT_ENDPOINTS:
        raise ValueError(f"endpoint must be one of {', '.join(FAULT_ENDPOINTS)}.")
    if spec.get("mode") not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}.")
    return {"endpoint": spec["endpoint"], "mode": spec["mode"]}


def _add_mode_fields(spec: dict[str, Any], fault: dict[str, Any]) -> None:
    """The fault's own mode's field, checked even when absent; another mode's, when given."""
    for mode, field in MODE_FIELDS.items():
        value = spec.get(field.name)
        if mode == fault["mode"]:
            fault[field.name] = _checked(field.name, field.default if value is None else value)
        elif value is not None:
            if field.only_this_mode:
                raise ValueError(f"{field.name} goes with mode {mode} only.")
            fault[field.name] = _checked(field.name, value)


def _add_applied(applied: Any, fault: dict[str, Any]) -> None:
    """`applied` is stored, false by default, on the PUT faults of APPLIED_MODES only."""
    takes_applied = fault["endpoint"] == "put" and fault["mode"] in APPLIED_MODES
    if applied is not None:
        _checked("applied", applied)
        if fault["endpoint"] != "put":
            raise ValueError("applied goes with endpoint put only (it is about a PUT's change).")
        if not takes_applied:
            modes = f"{', '.join(APPLIED_MODES[:-1])} or {APPLIED_MODES[-1]}"
            raise ValueError(f"applied goes with mode {modes} only.")
    if takes_applied:
        fault["applied"] = bool(applied)


def _checked(field: str, value: Any) -> Any:
    accepts, sentence = VALUE_RULES[field]
    if not accepts(value):
        raise ValueError(sentence)
    return value


class FaultRegistry:
    """The registered faults, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[dict[str, Any]] = []
        self._release = threading.Event()

    def add(self, spec: Any) -> dict[str, Any]:
        fault = validate(spec)
        with self._lock:
            self._faults.append(fault)
            return dict(fault)

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(fault) for fault in self._faults]

    def take(self, endpoint: str) -> dict[str, Any] | None:
        """The fault that applies to this call, its remaining count spent by one."""
        with self._lock:
            for wanted in (endpoint, "*"):
                for fault in self._faults:
                    if fault["endpoint"] == wanted and fault.get("remaining", 1) > 0:
                        if "remaining" in fault:
                            fault["remaining"] -= 1
                        return dict(fault)
        return None

    def clear(self) -> None:
        """Removes every fault and lets go of every held connection."""
        with self._lock:
            self._faults = []
        self.release_held()

    def release_held(self) -> None:
        with self._lock:
            self._release.set()
            self._release = threading.Event()

    def release_signal(self) -> threading.Event:
        """The event the next clearing (or `release_held`) sets: a connection that will wait
        several times takes it once, so that a clearing between two waits is not missed."""
        with self._lock:
            return self._release

    def hold(self, stopping: threading.Event, seconds: float = HOLD_SECONDS) -> None:
        """Blocks until released, until `stopping` is set or until `seconds` pass."""
        wait_unless_released(self.release_signal(), stopping, seconds)


def wait_unless_released(
    release: threading.Event, stopping: threading.Event, seconds: float
) -> bool:
    """Waits `seconds`; returns True, at once, if `release` or `stopping` is set first.

    Only `release` is waited on: the sandbox's stop() sets `stopping`, then the release signal
    (`release_held`). A waiter holding that signal wakes; one holding the next signal took it
    after `stopping` was set, so the check before waiting sees `stopping`."""
    deadline = time.monotonic() + seconds
    while not release.is_set() and not stopping.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        release.wait(remaining)
    return True
