"""HTTP over a bare socket, for requests no client library sends (a malformed request line, a
bad Content-Length, a method nobody uses); the answer is parsed by http.client."""

from __future__ import annotations

import http.client
import json
import re
import socket
from dataclasses import dataclass
from typing import Any


@dataclass
class RawAnswer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_exchange(port: int, request: bytes, *, head: bool = False) -> RawAnswer:
    """Sends `request` as is to 127.0.0.1:`port` and reads one answer (`head`: an answer to
    HEAD, which has no body whatever its Content-Length says)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        answer = http.client.HTTPResponse(connection, method="HEAD" if head else "GET")
        answer.begin()
        try:
            return RawAnswer(answer.status, answer.headers, answer.read())
        finally:
            answer.close()


def request_bytes(method: str, target: str, *headers: str, body: bytes = b"") -> bytes:
    """An HTTP/1.1 request, `headers` given as whole lines (`"Content-Length: 3"`)."""
    head = "".join(f"{line}\r\n" for line in ("Host: 127.0.0.1", *headers))
    return f"{method} {target} HTTP/1.1\r\n{head}\r\n".encode() + body


def read_answer(connection: socket.socket) -> bytes:
    """One whole answer (status line, headers, a body of its `Content-Length`) read off
    `connection` as it comes, however slowly; AssertionError if the peer closes first."""
    received = b""
    while True:
        head, separator, body = received.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if separator and len(body) >= (int(length[1]) if length else 0):
            return received
        chunk = connection.recv(65536)
        assert chunk, f"closed after {len(received)} bytes"
        received += chunk
