"""Waiting for what another process or thread does."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    condition: Callable[[], object], timeout: float = 10, interval: float = 0.01
) -> bool:
    """Asks `condition` until it holds or `timeout` seconds have passed; whether it held.

    For a state another process or thread reaches that offers nothing to wait on (a count
    behind an HTTP API, a line on a pipe read elsewhere). Hand-written: no library the tests
    already use polls a condition, and these few lines do not warrant one."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return bool(condition())
        time.sleep(interval)
    return True
