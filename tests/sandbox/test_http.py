"""The sandbox on the wire: routing and keep-alive."""

from __future__ import annotations

import pytest
import requests

from tests.sandbox.helpers import FIND, GET, HEALTH, PUT, call, calls, m2m_headers


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
