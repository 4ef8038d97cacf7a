"""A broken AIR MILES on loopback: its token endpoint works, every GET answers whatever the
test sets (the sandbox never lies, so tests of lying answers use this)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

from local.serving import BackgroundServer


class LiarHandler(BaseHTTPRequestHandler):
    answer: ClassVar[object] = {}

    def do_POST(self) -> None:  # the token endpoint tells no lies
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply({"access_token": "liar-token", "expires_in": 3600})

    def do_GET(self) -> None:
        self._reply(type(self).answer)

    def _reply(self, answer: object) -> None:
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        return None


@contextmanager
def lying_upstream() -> Iterator[tuple[str, type[LiarHandler]]]:
    """(base URL, handler class whose `answer` the test sets)."""
    handler = type("Liar", (LiarHandler,), {"answer": {}})
    server = BackgroundServer(handler, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{server.port}", handler
    finally:
        server.stop()


def entry(offer: str, collector: str) -> dict:
    """A FIND/GET entry as AIR MILES shapes it (with a field we do not know)."""
    return {
        "offerId": offer,
        "collectorId": collector,
        "states": [{"name": "SAVE", "value": "SAVED", "updatedAt": "2026-01-01T00:00:00.000001Z"}],
        "somethingNew": {"ignored": True},
    }
