"""An HTTP server on a background thread: the local stack runs several in one process."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    import requests


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
