"""The sandbox's run-time settings, changed through `POST /_sandbox/config`.

- `tokenTtl`: lifetime in seconds of tokens issued from now on; 0 is allowed.
- `putStatus` (our addition): 204, the default, or 200, when PUT answers `200 {}` instead
  (one upstream sample shows 200, so clients must accept both).
- `findTotals` (our addition): true, the default; false makes FIND leave out `pageNumber`,
  `pageSize` and `totalCount` (the upstream page does not document them).
Reset restores the defaults: the constructor's or SANDBOX_TOKEN_TTL's lifetime, 204, true.
"""

from __future__ import annotations

import os
import threading
from typing import Any, TypeGuard

DEFAULT_TOKEN_TTL = 86400


def default_token_ttl(explicit: int | None) -> int:
    """The constructor's value, else SANDBOX_TOKEN_TTL, else 24 h (AIR MILES's lifetime)."""
    if explicit is not None:
        return explicit
    return int(os.environ.get("SANDBOX_TOKEN_TTL", DEFAULT_TOKEN_TTL))


def is_json_int(value: Any) -> TypeGuard[int]:
    """A JSON integer (`true` parses as a Python int too, and is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


class SandboxConfig:
    """tokenTtl (seconds), putStatus (204 or 200), findTotals (paging totals in FIND)."""

    def __init__(self, token_ttl: int) -> None:
        self._lock = threading.Lock()
        self._defaults = {"tokenTtl": token_ttl, "putStatus": 204, "findTotals": True}
        self._values = dict(self._defaults)

    def reset(self) -> None:
        with self._lock:
            self._values = dict(self._defaults)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._values)

    def __getitem__(self, key: str) -> Any:
        with self._lock:
            return self._values[key]

    def update(self, changes: Any) -> dict[str, Any]:
        """Applies all changes or none; raises ValueError naming the first bad one."""
        if not isinstance(changes, dict):
            raise ValueError("The body must be a JSON object.")
        for key, value in changes.items():
            if key == "tokenTtl":
                # 0 is allowed on purpose: it issues tokens that are already expired.
                ok = is_json_int(value) and value >= 0
            elif key == "putStatus":
                ok = is_json_int(value) and value in (200, 204)
            elif key == "findTotals":
                ok = isinstance(value, bool)
            else:
                raise ValueError(f"Unknown config key: {key}.")
            if not ok:
                raise ValueError(f"Bad value for {key}.")
        with self._lock:
            self._values.update(changes)
            return dict(self._values)
