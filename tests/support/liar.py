"""A broken AIR MILES on loopback: its token endpoint works, every other call answers whatever
the test sets (the sandbox never lies, so tests of lying answers use this): a JSON `answer`,
or `wire`, bytes written as they are before the connection is closed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from local.serving import HttpRequest, HttpResponse, HttpService, RequestHandler, json_response


class LyingUpstream(HttpService):
    def __init__(self) -> None:
        super().__init__("127.0.0.1", 0)
        self.answer: object = {}
        self.wire: bytes | None = None
        self.calls = 0  # calls other than the token's

    def serve(self, request: HttpRequest, exchange: RequestHandler) -> str:
        if request.method != "POST":
            self.calls += 1
        if self.wire is None or request.method == "POST":
            return super().serve(request, exchange)
        exchange.wfile.write(self.wire)
        exchange.close_connection = True
        return "wire"

    def respond(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST":  # the token endpoint tells no lies
            return json_response(200, {"access_token": "liar-token", "expires_in": 3600})
        return json_response(200, self.answer)


@contextmanager
def lying_upstream() -> Iterator[tuple[str, LyingUpstream]]:
    """(base URL, the server, whose `answer` the test sets)."""
    with LyingUpstream() as liar:
        yield liar.url, liar


def entry(offer: str, collector: str) -> dict:
    """A FIND/GET entry as AIR MILES shapes it (with a field we do not know)."""
    return {
        "offerId": offer,
        "collectorId": collector,
        "states": [{"name": "SAVE", "value": "SAVED", "updatedAt": "2026-01-01T00:00:00.000001Z"}],
        "somethingNew": {"ignored": True},
    }
