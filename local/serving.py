"""An HTTP server on a background thread: the local stack runs several in one process."""

from __future__ import annotations

import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    import requests


def stop_on_signals() -> threading.Event:
    """An event that SIGINT or SIGTERM sets (Ctrl-C, or `kill`): the foreground commands wait
    on it, then stop what they started.

    The handler sets it from a short-lived thread, not itself: a handler runs in the main
    thread, between any two bytecodes, so it may find the event's (non-reentrant) lock held
    by that same thread, and `set()` would wait for it forever. Seen under `make`: the
    terminal's signal and make's copy of it arrive together, the second handler runs inside
    the first one's `set()`, and the process hangs."""
    stop = threading.Event()

    def handler(_signum: int, _frame: object) -> None:
        threading.Thread(target=stop.set, daemon=True).start()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)
    return stop


def loopback_session() -> requests.Session:
    """A requests session for calls between the local services: no proxy from the
    environment (a proxy would not reach 127.0.0.1), no .netrc."""
    import requests

    session = requests.Session()
    session.trust_env = False
    return session


class BackgroundServer:
    """`ThreadingHTTPServer` serving `handler` from a daemon thread; `port` is known at once
    (pass 0 for a free one)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], host: str, port: int) -> None:
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True  # a held connection must not block shutdown
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
