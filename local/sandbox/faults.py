"""Injected faults: which calls misbehave, how, and for how long.

A fault names one counted endpoint or `*`; a fault for the endpoint itself beats `*`, and among
several the first registered that still has calls left applies. `count` absent means: until
cleared. `timeout` faults hold their connections on an event that clearing (and stopping the
sandbox) sets, so a held client is released at once rather than after HOLD_SECONDS.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from local.sandbox.calls import ENDPOINTS
from local.sandbox.config import is_json_int

FAULT_ENDPOINTS = (*ENDPOINTS, "*")
MODES = ("status", "delay", "timeout", "malformed", "reset")
FIELDS = ("endpoint", "mode", "status", "delayMs", "count", "retryAfter")
HOLD_SECONDS = 120.0
DEFAULT_RETRY_AFTER = 1


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

    def hold(self, stopping: threading.Event, seconds: float = HOLD_SECONDS) -> None:
        """Blocks until released, until `stopping` is set or until `seconds` pass."""
        with self._lock:
            release = self._release
        deadline = time.monotonic() + seconds
        while not release.is_set() and not stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            release.wait(min(remaining, 0.05))
