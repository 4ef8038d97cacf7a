"""Call counts and the request log of the six counted endpoints (token and Offer State)."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

ENDPOINTS = ("token", "health", "find", "get", "count", "put")
LOG_SIZE = 500


class CallLog:
    """Counts every call (faulted and rejected ones too) and keeps the last LOG_SIZE of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(ENDPOINTS, 0)
        self._log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)

    def reset(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(ENDPOINTS, 0)
            self._log.clear()

    def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Counts the call and logs `entry`; the caller sets `status` on it once known."""
        with self._lock:
            self._counts[entry["endpoint"]] += 1
            self._log.append(entry)
        return entry

    def set_status(self, entry: dict[str, Any], status: int | None) -> None:
        with self._lock:
            entry["status"] = status

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._log]
