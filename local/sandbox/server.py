"""The sandbox's HTTP side: routing, the counted-call pipeline, faults on the wire, `Sandbox`.

A counted call (token, health, find, get, count, put) is counted and logged first, then any
fault applies, and only then the endpoint's own auth and validation run.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import socket
import socketserver
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

from local.sandbox import control_api, offer_api
from local.sandbox.calls import CallLog
from local.sandbox.config import SandboxConfig, default_token_ttl
from local.sandbox.faults import FaultRegistry
from local.sandbox.messages import (
    AUTH0_ERRORS,
    ApiError,
    Reply,
    Request,
    api_error,
    auth0_error,
    json_reply,
    status_sentence,
)
from local.sandbox.store import OfferStore
from local.sandbox.token_endpoint import issue_token
from local.sandbox.tokens import TOKEN_PATH, TokenAuthority, token_kind

logger = logging.getLogger(__name__)

Handler = Callable[..., Reply]
JWKS_PATH = "/.well-known/jwks.json"
COLLECTOR_STATES = re.compile(r"/_sandbox/collectors/([^/]*)/states")
MAX_BODY = 1 << 20
# Bodies that start like the real answer and stop mid-way: what a cut-off proxy would pass on.
MALFORMED_BODIES = {"token": b'{"access_token": "eyJ', "*": b'{"offers": [{"offerId": '}


def _jwks(sandbox: Sandbox, request: Request) -> Reply:
    return json_reply(200, sandbox.tokens.jwks())


@dataclass(frozen=True)
class Route:
    """A path's handlers by method; `endpoint` names the counter of a counted route."""

    methods: dict[str, Handler]
    endpoint: str | None = None


ROUTES = {
    TOKEN_PATH: Route({"POST": issue_token}, "token"),
    "/offers/state-reader/health": Route({"GET": offer_api.health}, "health"),
    "/offers/state-reader/v1/find": Route({"GET": offer_api.find_states}, "find"),
    "/offers/state-reader/v1/get": Route({"GET": offer_api.get_states}, "get"),
    "/offers/state-reader/v1/count": Route({"GET": offer_api.count_states}, "count"),
    "/offers/state-writer/v1/put": Route({"PUT": offer_api.put_states}, "put"),
    # The upstream page's heading names this path for PUT; its sample uses state-writer.
    "/offers/state-reader/v1/put": Route({"PUT": offer_api.put_states}, "put"),
    JWKS_PATH: Route({"GET": _jwks}),
    "/_sandbox/offers": Route({"GET": control_api.offers}),
    "/_sandbox/member-token": Route({"POST": control_api.member_token}),
    "/_sandbox/config": Route({"GET": control_api.get_config, "POST": control_api.set_config}),
    "/_sandbox/reset": Route({"POST": control_api.reset}),
    "/_sandbox/calls": Route({"GET": control_api.calls}),
    "/_sandbox/requests": Route({"GET": control_api.requests}),
    "/_sandbox/faults": Route(
        {
            "GET": control_api.list_faults,
            "POST": control_api.add_fault,
            "DELETE": control_api.clear_faults,
        }
    ),
}
# Auth0 and the JWKS document do not speak AIR MILES: no correlation id on their answers.
NO_CORRELATION = {TOKEN_PATH, JWKS_PATH}


def _route(path: str) -> Route | None:
    match = COLLECTOR_STATES.fullmatch(path)
    if match is None:
        return ROUTES.get(path)
    return Route({"GET": functools.partial(control_api.collector_states, collector=match[1])})


def _bearer(request: Request) -> str | None:
    scheme, _, token = (request.header("Authorization") or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _recorded_headers(headers: Message) -> dict[str, str]:
    recorded: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key == "authorization":
            value = "Bearer <redacted>" if value.lower().startswith("bearer") else "<redacted>"
        recorded[key] = f"{recorded[key]}, {value}" if key in recorded else value
    return recorded


def _recorded_body(request: Request) -> Any:
    try:
        return request.json()
    except ValueError:
        return request.body.decode("utf-8", errors="replace")[:2000]


def _fault_status_reply(endpoint: str, fault: dict[str, Any]) -> Reply:
    status = fault["status"]
    if endpoint == "token":
        error = AUTH0_ERRORS.get(status, "server_error" if status >= 500 else "invalid_request")
        reply = auth0_error(status, error, status_sentence(status))
    else:
        reply = api_error(status, status_sentence(status))
    if status in (429, 503):
        reply.headers["Retry-After"] = str(fault["retryAfter"])
    return reply


class Sandbox:
    """The AIR MILES test environment on loopback: token endpoint, Offer State API, control API.

    `Sandbox(port=0).start()` serves on a free port in a background thread; `url` and `issuer`
    are known once started; `stop()` releases held connections and closes everything.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token_ttl: int | None = None,
        *,
        log_stream: IO[str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tokens = TokenAuthority()
        self.store = OfferStore()
        self.config = SandboxConfig(default_token_ttl(token_ttl))
        self.faults = FaultRegistry()
        self.calls = CallLog()
        self._log_stream = log_stream
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self.tokens.issuer = self.issuer
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        self.faults.release_held()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def issuer(self) -> str:
        return self.url + "/"

    def reset(self) -> None:
        """Seed, config defaults, no faults, no counts, empty log; the signing key stays."""
        self.store.reset()
        self.config.reset()
        self.faults.clear()
        self.calls.reset()

    # -- requests --------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Reply:
        """The answer to one request (or an instruction to hold or reset the connection)."""
        route = _route(request.path)
        handler = route.methods.get(request.method) if route else None
        if route is None:
            reply = api_error(404, "No such resource.", "NOT_FOUND")
        elif handler is None:
            reply = api_error(405, "Method not allowed on this resource.")
            reply.headers["Allow"] = ", ".join(route.methods)
        elif route.endpoint is not None:
            reply = self._counted(route.endpoint, handler, request)
        else:
            reply = self._control(handler, request)
        if request.path not in NO_CORRELATION:
            correlation_id = request.header("x-correlation-id") or str(uuid.uuid4())
            reply.headers["X-Correlation-Id"] = correlation_id
        return reply

    def _control(self, handler: Handler, request: Request) -> Reply:
        try:
            return handler(self, request)
        except ValueError as error:
            return json_reply(400, {"error": str(error)})

    def _counted(self, endpoint: str, handler: Handler, request: Request) -> Reply:
        if endpoint != "token":
            token = _bearer(request)
            request.claims = self.tokens.verify(token) if token else None
        entry = {
            "endpoint": endpoint,
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "headers": _recorded_headers(request.headers),
            "status": None,
            "tokenKind": token_kind(request.claims),
        }
        if endpoint == "put":
            entry["body"] = _recorded_body(request)
        self.calls.record(entry)
        reply = self._fault(endpoint)
        if reply is None:
            try:
                reply = handler(self, request)
            except ApiError as error:
                reply = api_error(error.status, error.message, error.code)
            except Exception:
                logger.exception("sandbox handler failed")
                reply = api_error(500, "The sandbox failed to handle the request.")
        self.calls.set_status(entry, reply.status if reply.action == "answer" else None)
        return reply

    def _fault(self, endpoint: str) -> Reply | None:
        """The faulty answer for this call, or None to answer normally (after any delay)."""
        fault = self.faults.take(endpoint)
        if fault is None:
            return None
        mode = fault["mode"]
        if mode == "status":
            return _fault_status_reply(endpoint, fault)
        if mode == "delay":
            self._stopping.wait(fault["delayMs"] / 1000)
            return None
        if mode == "malformed":
            body = MALFORMED_BODIES.get(endpoint, MALFORMED_BODIES["*"])
            return Reply(200, body, {"Content-Type": "application/json"})
        return Reply(action="hold" if mode == "timeout" else "reset")

    def hold(self) -> None:
        """Blocks a `timeout`-faulted connection until faults are cleared or the sandbox stops."""
        self.faults.hold(self._stopping)

    def log(self, line: str) -> None:
        if self._log_stream is None:
            return
        with self._log_lock:
            self._log_stream.write(line + "\n")
            self._log_stream.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops bursts of connects (a retry costs 1 s).
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (read timeout) before a delayed answer is what faults are for.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

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


class _BadBody(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AirMilesSandbox/1.0"
    # Headers and body go out in two writes; with Nagle on, a keep-alive client waits for a
    # delayed ACK (about 40 ms) between them.
    disable_nagle_algorithm = True
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def _serve(self) -> None:
        started = time.perf_counter()
        sandbox = self.server.sandbox
        target = urlsplit(self.path)
        try:
            body = self._read_body()
        except _BadBody as error:
            self.close_connection = True
            reply = api_error(error.status, str(error))
        else:
            request = Request(
                method=self.command,
                path=target.path,
                query=parse_qs(target.query, keep_blank_values=True),
                headers=self.headers,
                body=body,
            )
            reply = sandbox.dispatch(request)
        if reply.action == "hold":
            sandbox.hold()
            self.close_connection = True
            outcome = "held, closed"
        elif reply.action == "reset":
            self._reset_connection()
            outcome = "reset"
        else:
            self._write(reply)
            outcome = str(reply.status)
        elapsed = (time.perf_counter() - started) * 1000
        sandbox.log(f"{self.command} {target.path} {outcome} {elapsed:.1f}ms")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _serve

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        if not length.strip().isdigit():
            raise _BadBody(400, "The Content-Length header is not valid.")
        if int(length) > MAX_BODY:
            raise _BadBody(413, "The request body is too large.")
        return self.rfile.read(int(length))

    def _read_chunked(self) -> bytes:
        chunks, total = [], 0
        while True:
            try:
                size = int(self.rfile.readline(1024).split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadBody(400, "The chunked request body is not valid.") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                raise _BadBody(413, "The request body is too large.")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _write(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        # 1xx, 204 and 304 answers carry no body and, by RFC 9110, no Content-Length.
        bodiless = reply.status < 200 or reply.status in (204, 304)
        if reply.status < 200:
            self.send_header("Connection", "close")
        if not bodiless:
            self.send_header("Content-Length", str(len(reply.body or b"")))
        self.end_headers()
        if reply.body and not bodiless and self.command != "HEAD":
            self.wfile.write(reply.body)

    def _reset_connection(self) -> None:
        # Linger on with a zero timeout turns close() into a TCP RST. The request has been
        # read in full, so the client sees the reset rather than a broken pipe.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # drops makefile()'s reference, so close() below is the real one
        self.connection.close()
        self.close_connection = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _serve logs one line per request itself

    def log_message(self, format: str, *args: Any) -> None:
        self.server.sandbox.log(format % args)
