"""The sandbox on the wire: `Sandbox`, an `HttpService` that hands each request to
`dispatch` and carries out its reply, faults included: `timeout` holds the connection without
an answer, `reset` ends it with a TCP RST, `truncate` sends the answer with its whole
`Content-Length` but only half its body and closes (a FIN, as from a proxy cut off mid-answer),
`drip` sends the whole answer, status line first, one byte every `interval` (stopping when
faults are cleared, the sandbox stops or the client goes away). `badGzip` is an ordinary
answer on the wire: `dispatch` has labelled it."""

from __future__ import annotations

import socket
import struct
from urllib.parse import parse_qs

from local.console import LineWriter
from local.sandbox.dispatch import dispatch
from local.sandbox.faults import wait_unless_released
from local.sandbox.messages import Reply, Request, api_error
from local.sandbox.state import SandboxState
from local.serving import HttpRequest, HttpResponse, HttpService, RequestHandler


class Sandbox(HttpService):
    """The AIR MILES test environment on loopback: token endpoint, Offer State API, control API.

    `Sandbox(port=0).start()` serves on a free port in a background thread; `url` and `issuer`
    are known once started; `stop()` releases held connections and closes everything.
    `log`, when given, gets one line a request.
    """

    server_header = "AirMilesSandbox/1.0"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token_ttl: int | None = None,
        *,
        log: LineWriter | None = None,
    ) -> None:
        super().__init__(host, port)
        self.state = SandboxState(token_ttl)
        self._log = log

    def start(self) -> Sandbox:
        self.state.stopping.clear()
        super().start()
        self.state.tokens.issuer = self.issuer
        return self

    def stop(self) -> None:
        self.state.stopping.set()
        self.state.faults.release_held()
        super().stop()

    @property
    def issuer(self) -> str:
        return self.url + "/"

    def serve(self, request: HttpRequest, exchange: RequestHandler) -> str:
        reply = dispatch(
            self.state,
            Request(
                method=request.method,
                path=request.path,
                query=parse_qs(request.query, keep_blank_values=True),
                headers=request.headers,
                body=request.body,
            ),
        )
        if reply.action == "hold":
            # Until faults are cleared or the sandbox stops; then closed, still unanswered.
            self.state.faults.hold(self.state.stopping)
            exchange.close_connection = True
            return "held, closed"
        if reply.action == "reset":
            _reset(exchange)
            return "reset"
        if reply.action == "truncate":
            return _truncate(exchange, _response(reply))
        if reply.action == "drip":
            return self._drip(exchange, _response(reply), reply.interval)
        exchange.send(_response(reply))
        return str(reply.status)

    def _drip(self, exchange: RequestHandler, response: HttpResponse, interval: float) -> str:
        # Every read the client makes gets a byte inside any read timeout; the whole answer
        # takes len(answer) * interval. The release signal is taken once, before the first
        # byte, so that a clearing while a byte is being written is not missed.
        release = self.state.faults.release_signal()
        answer = exchange.encode(response)
        for offset in range(len(answer)):
            if wait_unless_released(release, self.state.stopping, interval):
                break
            try:
                exchange.wfile.write(answer[offset : offset + 1])
            except OSError:  # the client went away
                break
        else:
            return f"{response.status} dripped"
        exchange.close_connection = True
        return f"{response.status} dripped, cut after {offset} of {len(answer)} bytes"

    def refusal(self, status: int, message: str) -> HttpResponse:
        return _response(api_error(status, message))

    def log_request(self, line: str) -> None:
        if self._log is not None:
            self._log(line)


def _response(reply: Reply) -> HttpResponse:
    return HttpResponse(reply.status, reply.body or b"", list(reply.headers.items()))


def _truncate(exchange: RequestHandler, response: HttpResponse) -> str:
    answer = exchange.encode(response)
    head = len(answer) - len(response.body)
    exchange.wfile.write(answer[: head + len(response.body) // 2])
    # Set after encoding, so the headers do not announce the close: nothing but the short
    # body gives the cut away.
    exchange.close_connection = True
    return f"{response.status} truncated"


def _reset(exchange: RequestHandler) -> None:
    # Linger on with a zero timeout turns close() into a TCP RST. The request has been read
    # in full, so the client sees the reset rather than a broken pipe.
    connection = exchange.connection
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    exchange.rfile.close()  # drops makefile()'s reference, so close() below is the real one
    connection.close()
    exchange.close_connection = True
