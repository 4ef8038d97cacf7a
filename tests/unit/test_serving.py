"""The local services' one HTTP server base (`local.serving`), driven over loopback with raw
requests, and the dev issuer's and demo page's use of it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.demo_server import DemoServer
from local.issuer import DevIssuer, IssuerServer
from local.serving import HttpRequest, HttpResponse, HttpService, json_response
from tests.support.raw_http import raw_exchange, request_bytes
from tests.support.waiting import wait_until


class Echo(HttpService):
    """Answers with what it read; `/raise` raises."""

    max_body_bytes = 16

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def respond(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/raise":
            raise RuntimeError("a bug in the service")
        return json_response(
            200,
            {
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "body": request.body.decode(),
            },
        )

    def log_request(self, line: str) -> None:
        self.lines.append(line)


@pytest.fixture
def echo() -> Iterator[Echo]:
    with Echo() as service:
        yield service


def _assert_json_refusal(answer, status: int, message: str) -> None:
    assert answer.status == status
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["Connection"] == "close"
    assert answer.json() == {"message": message}


@pytest.mark.parametrize("method", ["GET", "TRACE", "PATCH", "FOO", "M-SEARCH"])
def test_any_method_reaches_the_service(echo: Echo, method: str):
    answer = raw_exchange(echo.port, request_bytes(method, "/a/b?x=1&y"))
    assert answer.status == 200
    assert answer.json() == {"method": method, "path": "/a/b", "query": "x=1&y", "body": ""}


def test_a_connect_request_line_reaches_the_service_with_its_authority_as_path(echo: Echo):
    answer = raw_exchange(echo.port, request_bytes("CONNECT", "example.com:443"))
    assert answer.json()["path"] == "example.com:443"


@pytest.mark.parametrize(
    "request_line",
    [
        b"GARBAGE",
        b"GET / HTTP/9.9",
        b"GET / HTTP/2.0",
        b"GET /",  # HTTP/0.9
        b"GET / HTTP/1.1 extra",
        b"GET  / HTTP/1.1",
        b"G(T / HTTP/1.1",
        b"\x16\x03\x01\x00\xa5\x01\x00",  # a TLS client hello
        b"",
    ],
)
def test_a_malformed_request_line_is_refused_with_json(echo: Echo, request_line: bytes):
    answer = raw_exchange(echo.port, request_line + b"\r\nHost: x\r\n\r\n")
    _assert_json_refusal(answer, 400, "The request line is not valid.")
    [line] = _log_lines(echo)
    assert line.startswith("- - 400 ")


def test_a_request_line_over_64_kib_is_refused_with_json(echo: Echo):
    answer = raw_exchange(echo.port, request_bytes("GET", "/" + "a" * 70_000))
    _assert_json_refusal(answer, 414, "The request line is too long.")


@pytest.mark.parametrize(
    "lengths",
    [["abc"], ["-1"], ["+3"], ["0x3"], ["3.0"], [""], ["3, 4"], ["3", "4"], ["٣"]],
    ids=repr,
)
def test_a_bad_content_length_is_refused_with_json(echo: Echo, lengths: list[str]):
    headers = [f"Content-Length: {value}" for value in lengths]
    answer = raw_exchange(echo.port, request_bytes("POST", "/", *headers, body=b"abcd"))
    _assert_json_refusal(answer, 400, "The Content-Length header is not valid.")


@pytest.mark.parametrize("lengths", [["3", "3"], ["3, 3"]])
def test_a_repeated_content_length_of_one_value_is_read(echo: Echo, lengths: list[str]):
    headers = [f"Content-Length: {value}" for value in lengths]
    answer = raw_exchange(echo.port, request_bytes("POST", "/", *headers, body=b"abc"))
    assert answer.json()["body"] == "abc"


def test_a_body_over_the_limit_is_refused_unread(echo: Echo):
    body = b"x" * 17
    answer = raw_exchange(echo.port, request_bytes("POST", "/", "Content-Length: 17", body=body))
    _assert_json_refusal(answer, 413, "The request body is too large.")


def test_a_body_shorter_than_its_content_length_is_refused(echo: Echo):
    with socket.create_connection(("127.0.0.1", echo.port), timeout=10) as connection:
        connection.sendall(request_bytes("POST", "/", "Content-Length: 10", body=b"abc"))
        connection.shutdown(socket.SHUT_WR)
        answer = connection.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert answer.endswith(b'{"message":"The request body is shorter than its Content-Length."}')


def test_a_chunked_body_is_decoded(echo: Echo):
    chunks = b"3\r\nabc\r\n2;name=value\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n"
    answer = raw_exchange(
        echo.port, request_bytes("PUT", "/", "Transfer-Encoding: chunked", body=chunks)
    )
    assert answer.json()["body"] == "abcde"


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        (["Transfer-Encoding: chunked"], b"zz\r\nabc\r\n0\r\n\r\n", "chunked"),
        (["Transfer-Encoding: chunked"], b"-3\r\nabc\r\n0\r\n\r\n", "chunked"),
        (["Transfer-Encoding: chunked"], b"3\r\nabcdef\r\n0\r\n\r\n", "chunked"),
        (["Transfer-Encoding: chunked"], b"9\r\n" + b"x" * 9 + b"\r\n9\r\n", "too large"),
        (["Transfer-Encoding: gzip"], b"", "Transfer-Encoding"),
        (["Transfer-Encoding: chunked, gzip"], b"", "Transfer-Encoding"),
        (["Transfer-Encoding: chunked", "Content-Length: 3"], b"0\r\n\r\n", "Transfer-Encoding"),
    ],
)
def test_a_bad_chunked_body_or_transfer_encoding_is_refused(echo: Echo, headers, body, message):
    answer = raw_exchange(echo.port, request_bytes("POST", "/", *headers, body=body))
    assert answer.status in (400, 413)
    assert answer.headers["Content-Type"] == "application/json"
    assert message in answer.json()["message"]


def test_keep_alive_serves_requests_one_after_another_on_one_connection(echo: Echo):
    with socket.create_connection(("127.0.0.1", echo.port), timeout=10) as connection:
        connection.sendall(
            request_bytes("POST", "/first", "Content-Length: 2", body=b"ab")
            + request_bytes("GET", "/second")
        )
        stream = connection.makefile("rb")
        answers = [_read_answer(stream), _read_answer(stream)]
    assert [b'"path":"/first"' in a for a in answers] == [True, False]
    assert b'"path":"/second"' in answers[1]


def test_a_refusal_ends_the_connection(echo: Echo):
    with socket.create_connection(("127.0.0.1", echo.port), timeout=10) as connection:
        connection.sendall(
            request_bytes("POST", "/", "Content-Length: x", body=b"ab")
            + request_bytes("GET", "/second")
        )
        everything = connection.makefile("rb").read()  # to the end: the server closed
    assert everything.count(b"HTTP/1.1 ") == 1
    assert everything.startswith(b"HTTP/1.1 400 ")


def test_head_gets_the_headers_without_the_body(echo: Echo):
    answer = raw_exchange(echo.port, request_bytes("HEAD", "/"), head=True)
    assert answer.status == 200
    assert int(answer.headers["Content-Length"]) > 0
    assert answer.body == b""


def test_too_many_headers_are_refused_with_json_not_html(echo: Echo):
    headers = [f"X-{n}: {n}" for n in range(120)]  # http.server takes 100
    answer = raw_exchange(echo.port, request_bytes("GET", "/", *headers))
    assert answer.status == 431
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"message": "Too many headers"}


def test_a_service_that_raises_answers_500_and_serves_on(echo: Echo):
    answer = raw_exchange(echo.port, request_bytes("GET", "/raise"))
    assert (answer.status, answer.json()) == (500, {"message": "Internal Server Error"})
    assert raw_exchange(echo.port, request_bytes("GET", "/")).status == 200


def test_one_log_line_a_request_without_the_query(echo: Echo):
    raw_exchange(echo.port, request_bytes("FOO", "/path?secret=1"))
    [line] = _log_lines(echo)
    method, path, outcome, elapsed = line.split(" ")
    assert (method, path, outcome) == ("FOO", "/path", "200")
    assert elapsed.endswith("ms")


def test_stop_ends_idle_keep_alive_connections_and_stops_listening():
    service = Echo().start()
    assert service._server is not None
    # The listening socket itself, not a later connect to its port (which another test
    # process may have taken by then).
    listening = service._server.socket
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as idle:
        idle.sendall(request_bytes("GET", "/"))
        stream = idle.makefile("rb")
        _read_answer(stream)
        service.stop()
        assert stream.read() == b""  # closed by the server
    assert listening.fileno() == -1


def _log_lines(service: Echo) -> list[str]:
    """The service's log lines once it is done with every connection it took (a line is
    written after its answer is sent, so it may come just after the client has read it)."""
    server = service._server
    assert server is not None
    assert wait_until(lambda: not server._open)  # each connection's handler has returned
    return list(service.lines)


def _read_answer(stream) -> bytes:
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += stream.readline()
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    return head + stream.read(length)


# -- the dev issuer and the demo page use the base ----------------------------------------


@pytest.fixture(params=["issuer", "demo"])
def local_service(request, tmp_path: Path) -> Iterator[HttpService]:
    if request.param == "issuer":
        service: HttpService = IssuerServer(
            DevIssuer("http://127.0.0.1:1", tmp_path / "key.pem"), port=0
        )
    else:
        service = DemoServer(
            api_url="http://127.0.0.1:1",
            issuer_url="http://127.0.0.1:1",
            sandbox_url="http://127.0.0.1:1",
            port=0,
        )
    with service:
        yield service


@pytest.mark.parametrize(
    "request_data",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        request_bytes("POST", "/token", "Content-Length: abc"),
        request_bytes("POST", "/token", "Content-Length: -1"),
        request_bytes("POST", "/token", "Content-Length: 1", "Content-Length: 2", body=b"{}"),
    ],
    ids=["garbage", "HTTP/9.9", "Content-Length abc", "Content-Length -1", "two Content-Lengths"],
)
def test_the_issuer_and_the_demo_page_refuse_bad_requests_with_json(
    local_service: HttpService, request_data: bytes
):
    answer = raw_exchange(local_service.port, request_data)
    assert answer.status == 400
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()


@pytest.mark.parametrize("method", ["TRACE", "DELETE", "FOO"])
def test_the_issuer_and_the_demo_page_answer_any_method_without_html(
    local_service: HttpService, method: str
):
    answer = raw_exchange(local_service.port, request_bytes(method, "/token"))
    assert answer.status in (404, 405)
    assert "html" not in answer.headers["Content-Type"]
