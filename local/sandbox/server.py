"""The sandbox's HTTP side: `Sandbox`, its server, and faults on the wire (`timeout` holds the
connection without an answer, `reset` ends it with a TCP RST). What to answer is `dispatch`'s.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local.console import LineWriter
from local.sandbox.dispatch import dispatch
from local.sandbox.messages import Reply, Request, api_error
from local.sandbox.state import SandboxState

MAX_BODY = 1 << 20


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
        log: LineWriter | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.state = SandboxState(token_ttl)
        self._log = log
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        self.state.stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self.state.tokens.issuer = self.issuer
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.state.stopping.set()
        self.state.faults.release_held()
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

    def hold(self) -> None:
        """Blocks a `timeout`-faulted connection until faults are cleared or the sandbox stops."""
        self.state.faults.hold(self.state.stopping)

    def log(self, line: str) -> None:
        if self._log is not None:
            self._log(line)


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
            reply = dispatch(sandbox.state, request)
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
