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
    calls,
    m2m_headers,
    put_body,
    raw_states,
)
from tests.support.raw_http import raw_exchange, request_bytes


@pytest.mark.parametrize(
    "path", ["/offers/state-reader/v1/search", "/", "/offers/state-reader/v1/find/", "/_sandbox/x"]
)
def test_unknown_paths_are_404_not_found(sandbox, http, path):
    answer = http.get(sandbox.url + path, headers=m2m_headers(sandbox, http), timeout=5)

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
def test_wrong_method_on_a_known_path_is_405(sandbox, http, method, path):
    answer = http.request(method, sandbox.url + path, headers=m2m_headers(sandbox, http))

    assert answer.status_code == 405
    assert answer.json()["responseCode"] == "ERROR"
    assert answer.json()["message"]
    assert answer.headers["Allow"]
    assert sum(calls(http, sandbox).values()) == 1  # the token call only


def test_keep_alive_serves_many_calls_on_one_connection(sandbox, http):
    headers = m2m_headers(sandbox, http)
    with requests.Session() as session:
        answers = [call(session, sandbox, "count", headers) for _ in range(20)]
        # 204 carries no body and no Content-Length; the connection must still be reusable.
        answers += [call(session, sandbox, "put", headers) for _ in range(3)]
        answers += [call(session, sandbox, "count", headers) for _ in range(3)]

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
    sandbox, http, request_data
):
    answer = raw_exchange(sandbox.port, request_data)

    assert answer.status == 400
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["responseCode"] == "BAD_REQUEST"
    assert answer.json()["message"]
    assert sum(calls(http, sandbox).values()) == 0


def test_a_body_over_1_mib_is_413(sandbox, http):
    answer = raw_exchange(
        sandbox.port, request_bytes("PUT", PUT, f"Content-Length: {(1 << 20) + 1}")
    )

    assert answer.status == 413
    assert answer.json()["responseCode"] == "ERROR"


def test_a_chunked_put_body_is_read(sandbox, http):
    body = json.dumps(put_body(FRESH)).encode()
    chunks = iter([body[:10], body[10:]])  # a generator: requests sends it chunked

    answer = http.put(sandbox.url + PUT, headers=m2m_headers(sandbox, http), data=chunks)

    assert answer.status_code == 204
    assert FRESH in [e["offerId"] for e in raw_states(http, sandbox, MAIN)["offers"]]
