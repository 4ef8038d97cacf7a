"""HTTP serving for the local stack: the one server base of the sandbox, the gateway, the dev
issuer and the demo page (each an `HttpService`), plus the foreground commands' stop signal
and the loopback session the services call each other with.

The base is the standard library's `ThreadingHTTPServer`, not werkzeug's server (installed
with moto): the sandbox's wire faults need the connection itself, to hold it without an
answer, reset it after the request was read, or write an answer that lies about its length,
its pace or its encoding. werkzeug's WSGI layer writes the status line and headers on the
application's behalf and is `http.server` underneath (its HTML error pages included), so it
would add a layer to get around, not take one away. What `http.server` leaves out is added
here once, for all four services:

- any method reaches the service (the gateway answers undeclared ones as API Gateway does);
  a malformed request line, a bad `Content-Length` or `Transfer-Encoding`, a body over the
  service's limit are refused with a JSON answer (`HttpService.refusal`), never an HTML page;
- request bodies are read whole before the service sees them, `Content-Length` checked and
  chunked bodies decoded;
- HTTP/1.1 keep-alive, Nagle off, a listen backlog of 128 (the default 5 drops bursts of
  connects), no DNS lookup of the host's name on bind;
- open connections are tracked, so `stop()` also ends idle keep-alive ones, and stops at
  once (the accept loop polls every 50 ms, not every 500 ms);
- one log line a request, written whole (`HttpService.log_request`).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import re
import signal
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    import requests

logger = logging.getLogger(__name__)

MAX_REQUEST_LINE = 65536
# method SP request-target SP HTTP/1.x (RFC 9112, section 3); the method is a token.
REQUEST_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^\s]+ HTTP/1\.[01]\r?\n")
CONTENT_LENGTH = re.compile(r"[0-9]+")
CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]+)[ \t]*(;[^\r\n]*)?\r?\n")
MAX_CHUNK_LINE = 1024
MAX_DRAIN = 1 << 20


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


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 a moment ago (each bound to port 0, then
    released), for a command or test that must name its ports before starting."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def loopback_session() -> requests.Session:
    """A requests session for calls between the local services: no proxy from the
    environment (a proxy would not reach 127.0.0.1), no .netrc."""
    import requests

    session = requests.Session()
    session.trust_env = False
    return session


@dataclass
class HttpRequest:
    """One request, read whole: `target` as sent, `path` and `query` split from it."""

    method: str
    target: str
    headers: Message
    body: bytes = b""
    client: str = ""

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


@dataclass
class HttpResponse:
    """One answer; `Content-Length` is the server's to set, from `body`."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(
    status: int, payload: Any, headers: list[tuple[str, str]] | None = None
) -> HttpResponse:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return HttpResponse(status, body, [("Content-Type", "application/json"), *(headers or [])])


class RefusedRequest(Exception):
    """The request cannot be served as sent: answered with `HttpService.refusal`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class HttpService:
    """An HTTP service on a background thread: subclasses answer requests (`respond`) and may
    shape refusals and log lines. `start()` binds (port 0: a free one, known as `port` from
    then on) and serves; `stop()` closes every connection and the listening socket."""

    max_body_bytes = 1 << 20
    # The Server header; None: http.server's own (BaseHTTP/0.6 Python/3.x).
    server_header: str | None = None

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- what a service provides ------------------------------------------------------------

    def respond(self, request: HttpRequest) -> HttpResponse:
        """The answer to a well-formed request, whatever its method or path."""
        raise NotImplementedError

    def serve(self, request: HttpRequest, exchange: RequestHandler) -> str:
        """Answers one well-formed request on `exchange`; returns the outcome for the log line
        (the status). Override to do more on the wire than answer."""
        try:
            response = self.respond(request)
        except Exception:
            logger.exception(
                "%s failed to answer %s %s", type(self).__name__, request.method, request.path
            )
            response = self.refusal(500, "Internal Server Error")
        exchange.send(response)
        return str(response.status)

    def refusal(self, status: int, message: str) -> HttpResponse:
        """The answer to a request refused before `respond`: a malformed request line or
        header, a bad body framing, a body over `max_body_bytes`."""
        return json_response(status, {"message": message})

    def log_request(self, line: str) -> None:
        """One line a request: `METHOD /path outcome 1.2ms` (the query string left out: it
        may carry anything). Silent unless overridden."""

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), functools.partial(RequestHandler, self))
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://{self.host}:{self.port}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a held connection must not block shutdown
    request_queue_size = 128  # socketserver's 5 drops bursts of connects (a retry costs 1 s)

    def __init__(self, address: tuple[str, int], handler: Any) -> None:
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS query we neither need nor want.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Ends every open connection (idle keep-alive ones wait in a read otherwise)."""
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (a read timeout, a reset) is none of the server's business.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class RequestHandler(BaseHTTPRequestHandler):
    """Reads each request on a connection and hands it to the service (see the module's
    docstring); `send` writes an answer, `connection` is there for anything rawer."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, a keep-alive client waits for a
    # delayed ACK (about 40 ms) between them.
    disable_nagle_algorithm = True

    def __init__(self, service: HttpService, *args: Any) -> None:
        self.service = service
        self._refused: str | None = None
        super().__init__(*args)  # handles the connection's requests

    def handle_one_request(self) -> None:
        started = time.perf_counter()
        self.command, self.path = "", ""
        # Until the request line is read: an answer has a status line and closes.
        self.request_version, self.close_connection = self.protocol_version, True
        self._refused = None
        try:
            outcome = self._handle_one()
        except TimeoutError:
            self.close_connection = True
            return
        if outcome is not None:
            elapsed = (time.perf_counter() - started) * 1000
            path = self.path.partition("?")[0] or "-"
            self.service.log_request(f"{self.command or '-'} {path} {outcome} {elapsed:.1f}ms")

    def _handle_one(self) -> str | None:
        self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
        if not self.raw_requestline:
            return None  # the client closed the connection
        if len(self.raw_requestline) > MAX_REQUEST_LINE:
            return self.refuse(414, "The request line is too long.")
        if not REQUEST_LINE.fullmatch(self.raw_requestline):
            return self.refuse(400, "The request line is not valid.")
        if not self.parse_request():
            return self._refused  # parse_request answered through send_error
        try:
            body = self._read_body()
        except RefusedRequest as refused:
            return self.refuse(refused.status, refused.message)
        request = HttpRequest(self.command, self.path, self.headers, body, self.client_address[0])
        return self.service.serve(request, self)

    def send(self, response: HttpResponse) -> None:
        """Writes `response`: its headers, `Content-Length` (none on 1xx, 204 and 304, as
        RFC 9110 wants) and its body (none to HEAD)."""
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() != "content-length":
                self.send_header(name, value)
        bodiless = response.status < 200 or response.status in (204, 304)
        if response.status < 200 or self.close_connection:
            self.send_header("Connection", "close")
        if not bodiless:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.body and not bodiless and self.command != "HEAD":
            self.wfile.write(response.body)

    def encode(self, response: HttpResponse) -> bytes:
        """`response` as `send` would write it, status line to body, for a service that puts
        it on the wire some other way (in part, or a byte at a time)."""
        wire, self.wfile = self.wfile, io.BytesIO()
        try:
            self.send(response)
            return self.wfile.getvalue()
        finally:
            self.wfile = wire

    def refuse(self, status: int, message: str) -> str:
        """Answers with the service's refusal and closes the connection (what is left of
        the request cannot be trusted to frame the next one)."""
        self.close_connection = True
        self.send(self.service.refusal(status, message))
        self._refused = str(status)
        return self._refused

    def finish(self) -> None:
        super().finish()
        if self._refused is not None:
            self._drain()

    def _drain(self) -> None:
        # What the client still sends after a refusal (the rest of a long line, a body) is
        # read and dropped for up to a second: closing a socket with unread data sends a TCP
        # RST, which can destroy the refusal before the client has read it.
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(1)
            received = 0
            while received < MAX_DRAIN and (data := self.connection.recv(65536)):
                received += len(data)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own refusals (headers too long or too many) as JSON, not HTML.
        self.refuse(code, message or HTTPStatus(code).phrase)

    def version_string(self) -> str:
        return self.service.server_header or super().version_string()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # handle_one_request logs one line per request itself

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the same

    def _read_body(self) -> bytes:
        codings = [
            coding.strip().lower()
            for value in self.headers.get_all("Transfer-Encoding") or []
            for coding in value.split(",")
            if coding.strip()
        ]
        lengths = [
            length.strip()
            for value in self.headers.get_all("Content-Length") or []
            for length in value.split(",")
        ]
        if codings:
            # RFC 9112, 6.1: chunked must come last; with a Content-Length too, the framing
            # is ambiguous (request smuggling): refused rather than guessed.
            if codings != ["chunked"] or lengths:
                raise RefusedRequest(400, "The Transfer-Encoding header is not supported.")
            return self._read_chunked()
        if not lengths:
            return b""
        if (
            not all(CONTENT_LENGTH.fullmatch(length) for length in lengths)
            or len({int(length) for length in lengths}) != 1
        ):
            raise RefusedRequest(400, "The Content-Length header is not valid.")
        length = int(lengths[0])
        if length > self.service.max_body_bytes:
            raise RefusedRequest(413, "The request body is too large.")
        body = self.rfile.read(length)
        if len(body) < length:
            raise RefusedRequest(400, "The request body is shorter than its Content-Length.")
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = CHUNK_SIZE.fullmatch(self.rfile.readline(MAX_CHUNK_LINE))
            if size_line is None:
                raise RefusedRequest(400, "The chunked request body is not valid.")
            size = int(size_line[1], 16)
            if size == 0:
                break
            total += size
            if total > self.service.max_body_bytes:
                raise RefusedRequest(413, "The request body is too large.")
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(MAX_CHUNK_LINE) not in (b"\r\n", b"\n"):
                raise RefusedRequest(400, "The chunked request body is not valid.")
            chunks.append(chunk)
        while True:  # trailer fields, up to the empty line; none is used
            line = self.rfile.readline(MAX_CHUNK_LINE)
            if line in (b"\r\n", b"\n"):
                return b"".join(chunks)
            if not line.endswith(b"\n"):
                raise RefusedRequest(400, "The chunked request body is not valid.")
