"""The sandbox on the wire: routing, keep-alive, and requests it cannot read."""

from __future__ import annotations

import json

import pytest
import requests

from tests.sandbox.helpers import (
    FIND,
    FRESH,
    GET,
    HEALTH,
    MAIN,
    PUT,
    call,
    m2m_headers,
    put_body,
)
from tests.support.raw_http import raw_exchange, request_bytes


@pytest.mark.parametrize(
    "path", ["/offers/state-reader/v1/search", "/", "/offers/state-reader/v1/find/", "/_sandbox/x"]
)
def test_unknown_paths_are_404_not_found(sandbox_server, http, path):
    answer = http.get(
        sandbox_server.url + path, headers=m2m_headers(sandbox_server, http), timeout=5
    )

    assert answer.status_code == 404
    assert answer.json()["responseCode"] == "NOT_FOUND"
    assert answer.json()["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", FIND),
        ("PUT", GET),
        ("DELETE", HEALTH),
        ("GET", PUT),
        ("POST", "/_sandbox/calls"),
        ("TRACE", GET),
        ("FOO", HEALTH),
    ],
)
def test_wrong_method_on_a_known_path_is_405(sandbox_server, http, sandbox_control, method, path):
    answer = http.request(
        method, sandbox_server.url + path, headers=m2m_headers(sandbox_server, http)
    )

    assert answer.status_code == 405
    assert answer.json()["responseCode"] == "ERROR"
    assert answer.json()["message"]
    assert answer.headers["Allow"]
    assert sum(sandbox_control.calls().values()) == 1  # the token call only


def test_keep_alive_serves_many_calls_on_one_connection(sandbox_server, http):
    headers = m2m_headers(sandbox_server, http)
    with requests.Session() as session:
        answers = [call(session, sandbox_server, "count", headers) for _ in range(20)]
        # 204 carries no body and no Content-Length; the connection must still be reusable.
        answers += [call(session, sandbox_server, "put", headers) for _ in range(3)]
        answers += [call(session, sandbox_server, "count", headers) for _ in range(3)]

    assert [a.status_code for a in answers] == [200] * 20 + [204] * 3 + [200] * 3


@pytest.mark.parametrize(
    "request_data",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /offers/state-reader/health HTTP/9.9\r\n\r\n",
        request_bytes("PUT", PUT, "Content-Length: abc"),
        request_bytes("PUT", PUT, "Content-Length: -1"),
        request_bytes("PUT", PUT, "Content-Length: 2", "Content-Length: 3", body=b"{}"),
        request_bytes("PUT", PUT, "Transfer-Encoding: chunked", body=b"zz\r\n"),
    ],
    ids=[
        "garbage",
        "HTTP/9.9",
        "Content-Length abc",
        "Content-Length -1",
        "two Content-Lengths",
        "bad chunk",
    ],
)
def test_a_request_it_cannot_read_is_a_400_in_the_air_miles_shape_and_not_counted(
    sandbox_server, sandbox_control, request_data
):
    answer = raw_exchange(sandbox_server.port, request_data)

    assert answer.status == 400
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["responseCode"] == "BAD_REQUEST"
    assert answer.json()["message"]
    assert sum(sandbox_control.calls().values()) == 0


def test_a_body_over_1_mib_is_413(sandbox_server, http):
    answer = raw_exchange(
        sandbox_server.port, request_bytes("PUT", PUT, f"Content-Length: {(1 << 20) + 1}")
    )

    assert answer.status == 413
    assert answer.json()["responseCode"] == "ERROR"


def test_a_chunked_put_body_is_read(sandbox_server, http, sandbox_control):
    body = json.dumps(put_body(FRESH)).encode()
    chunks = iter([body[:10], body[10:]])  # a generator: requests sends it chunked

    answer = http.put(
        sandbox_server.url + PUT, headers=m2m_headers(sandbox_server, http), data=chunks
    )

    assert answer.status_code == 204
    assert FRESH in sandbox_control.states(MAIN)
