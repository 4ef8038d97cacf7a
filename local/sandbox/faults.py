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


def validate(spec: Any) -> dict[str, Any]:
    """The fault as it will be stored; raises ValueError with a sentence on bad input."""
    if not isinstance(spec, dict):
        raise ValueError("The body must be a JSON object.")
    unknown = sorted(set(spec) - set(FIELDS))
    if unknown:
        raise ValueError(f"Unknown fault fields: {', '.join(unknown)}.")
    if spec.get("endpoint") not in FAULT_ENDPOINTS:
        raise ValueError(f"endpoint must be one of {', '.join(FAULT_ENDPOINTS)}.")
    if spec.get("mode") not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}.")
    fault = {"endpoint": spec["endpoint"], "mode": spec["mode"]}
    status = spec.get("status")
    if status is not None or fault["mode"] == "status":
        if not is_json_int(status) or not 100 <= status <= 599:
            raise ValueError("status must be an integer from 100 to 599.")
        fault["status"] = status
    delay = spec.get("delayMs")
    if delay is not None or fault["mode"] == "delay":
        if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
            raise ValueError("delayMs must be a number of milliseconds, 0 or more.")
        fault["delayMs"] = delay
    interval = spec.get("intervalMs")
    if interval is not None and fault["mode"] != "drip":
        raise ValueError("intervalMs goes with mode drip only.")
    if fault["mode"] == "drip":
        interval = DEFAULT_INTERVAL_MS if interval is None else interval
        if not isinstance(interval, int | float) or isinstance(interval, bool) or interval < 1:
            raise ValueError("intervalMs must be a number of milliseconds, 1 or more.")
        fault["intervalMs"] = interval
    applied = spec.get("applied")
    if applied is not None:
        if not isinstance(applied, bool):
            raise ValueError("applied must be true or false.")
        if fault["endpoint"] != "put":
            raise ValueError("applied goes with endpoint put only (it is about a PUT's change).")
        if fault["mode"] not in APPLIED_MODES:
            modes = f"{', '.join(APPLIED_MODES[:-1])} or {APPLIED_MODES[-1]}"
            raise ValueError(f"applied goes with mode {modes} only.")
    if fault["endpoint"] == "put" and fault["mode"] in APPLIED_MODES:
        fault["applied"] = bool(applied)
    count = spec.get("count")
    if count is not None:
        if not is_json_int(count) or count < 1:
            raise ValueError("count must be a positive integer.")
        fault["count"] = count
        fault["remaining"] = count
    retry_after = spec.get("retryAfter", DEFAULT_RETRY_AFTER)
    if not is_json_int(retry_after) or retry_after < 0:
        raise ValueError("retryAfter must be a whole number of seconds, 0 or more.")
    fault["retryAfter"] = retry_after
    return fault


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
