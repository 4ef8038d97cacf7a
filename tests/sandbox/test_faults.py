"""Injected faults in action: status, delay, timeout, malformed and reset."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from local.sandbox import TOKEN_PATH, Sandbox
from local.sandbox.faults import HOLD_SECONDS
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
    token_form,
)
from tests.support.sandbox_control import SandboxControl
from tests.support.waiting import wait_until


@pytest.mark.parametrize(
    ("status", "code", "retry_after"),
    [
        (503, "SERVICE_UNAVAILABLE", "1"),
        (429, "TOO_MANY_REQUESTS", "1"),
        (502, "BAD_GATEWAY", None),
    ],
)
def test_status_fault_answers_before_auth_with_air_miles_error(
    sandbox_server, http, sandbox_control, status, code, retry_after
):
    sandbox_control.fault(endpoint="find", mode="status", status=status)

    answer = call(http, sandbox_server, "find", {"x-correlation-id": "c-1"})  # no token at all

    assert answer.status_code == status
    assert answer.json() == {"responseCode": code, "message": answer.json()["message"]}
    assert answer.json()["message"]
    assert answer.headers.get("Retry-After") == retry_after
    assert answer.headers["X-Correlation-Id"] == "c-1"


def test_status_fault_carries_the_configured_retry_after(sandbox_server, http, sandbox_control):
    sandbox_control.fault(endpoint="put", mode="status", status=429, retryAfter=7)

    answer = call(http, sandbox_server, "put", m2m_headers(sandbox_server, http))

    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "7"
    assert FRESH not in sandbox_control.states(MAIN)


def test_status_fault_on_token_endpoint_uses_auth0_shape(sandbox_server, http, sandbox_control):
    sandbox_control.fault(endpoint="token", mode="status", status=503)

    answer = http.post(sandbox_server.url + TOKEN_PATH, data=token_form(), timeout=5)

    assert answer.status_code == 503
    assert set(answer.json()) == {"error", "error_description"}
    assert answer.json()["error"] == "temporarily_unavailable"
    assert answer.headers["Retry-After"] == "1"


def test_fault_with_count_misbehaves_that_many_times(sandbox_server, http, sandbox_control):
    headers = m2m_headers(sandbox_server, http)
    sandbox_control.fault(endpoint="count", mode="status", status=500, count=2)

    statuses = [call(http, sandbox_server, "count", headers).status_code for _ in range(3)]

    assert statuses == [500, 500, 200]
    (listed,) = http.get(sandbox_server.url + "/_sandbox/faults").json()["faults"]
    assert listed["remaining"] == 0


def test_endpoint_fault_beats_wildcard_and_first_registered_applies(
    sandbox_server, http, sandbox_control
):
    headers = m2m_headers(sandbox_server, http)
    sandbox_control.fault(endpoint="*", mode="status", status=502)
    sandbox_control.fault(endpoint="get", mode="status", status=504, count=1)
    sandbox_control.fault(endpoint="get", mode="status", status=500, count=1)

    statuses = [call(http, sandbox_server, "get", headers).status_code for _ in range(3)]
    others = [call(http, sandbox_server, name, headers).status_code for name in ("health", "find")]

    assert statuses == [504, 500, 502]
    assert others == [502, 502]


def test_delay_fault_answers_normally_after_the_delay(sandbox_server, http, sandbox_control):
    headers = m2m_headers(sandbox_server, http)
    sandbox_control.fault(endpoint="count", mode="delay", delayMs=300, count=1)

    started = time.perf_counter()
    slow = call(http, sandbox_server, "count", headers)
    slow_seconds = time.perf_counter() - started
    fast = call(http, sandbox_server, "count", headers)

    assert slow.json() == fast.json() == {"count": 4}
    assert slow_seconds >= 0.3
    # `count: 1`: spent by the first call, so the second was not delayed
    assert [f["remaining"] for f in sandbox_control.faults()] == [0]


def test_timeout_fault_holds_the_connection_until_faults_are_cleared(
    sandbox_server, http, sandbox_control
):
    headers = m2m_headers(sandbox_server, http)
    sandbox_control.fault(endpoint="find", mode="timeout")

    with pytest.raises(requests.ReadTimeout), requests.Session() as session:
        session.get(sandbox_server.url + FIND, headers=headers, timeout=(2, 0.5))
    cleared = http.delete(sandbox_server.url + "/_sandbox/faults", timeout=5)
    after = call(http, sandbox_server, "find", headers)

    assert cleared.status_code == 200
    assert after.status_code == 200
    assert sandbox_control.calls()["find"] == 2


def test_timeout_fault_closes_the_connection_without_an_answer_when_released(
    sandbox_server, http, sandbox_control
):
    headers = m2m_headers(sandbox_server, http)
    sandbox_control.fault(endpoint="get", mode="timeout", count=1)
    outcome: list[BaseException] = []

    def held_call() -> None:
        try:
            requests.get(
                sandbox_server.url + GET, headers=headers, params={"offerId": FRESH}, timeout=5
            )
        except requests.RequestException as error:
            outcome.append(error)

    thread = threading.Thread(target=held_call)
    thread.start()
    assert wait_until(lambda: sandbox_control.calls()["get"] == 1)  # it has arrived
    assert thread.is_alive()  # and is held
    http.delete(sandbox_server.url + "/_sandbox/faults", timeout=5)
    thread.join(timeout=5)

    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], requests.ConnectionError)


def test_stopping_the_sandbox_releases_held_connections():
    lines: list[str] = []
    with Sandbox(port=0, log=lines.append) as other:
        requests.post(
            other.url + "/_sandbox/faults", json={"endpoint": "*", "mode": "timeout"}, timeout=5
        ).raise_for_status()
        errors: list[BaseException] = []

        def held_call() -> None:
            try:
                requests.get(other.url + HEALTH, timeout=10)
            except requests.RequestException as error:
                errors.append(error)

        url = other.url
        thread = threading.Thread(target=held_call)
        thread.start()
        control = SandboxControl(url)
        assert wait_until(lambda: control.calls()["health"] == 1)  # held now
        started = time.perf_counter()
        other.stop()
        stop_seconds = time.perf_counter() - started
        thread.join()  # the call's own timeout bounds it

    # Let go, not held for HOLD_SECONDS (the closed socket alone would fail the client).
    assert wait_until(lambda: any(" held, closed " in line for line in lines))
    assert stop_seconds < HOLD_SECONDS
    assert len(errors) == 1
    assert isinstance(errors[0], requests.ConnectionError)
    with pytest.raises(requests.ConnectionError):  # the port is closed
        requests.get(url + HEALTH, timeout=2)


def test_malformed_fault_answers_200_with_a_body_that_is_not_json(
    sandbox_server, http, sandbox_control
):
    sandbox_control.fault(endpoint="get", mode="malformed")

    answer = call(http, sandbox_server, "get", m2m_headers(sandbox_server, http))

    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.content
    with pytest.raises(ValueError, match=r".+"):
        json.loads(answer.content)


def test_reset_fault_drops_the_connection(sandbox_server, http, sandbox_control):
    headers = m2m_headers(sandbox_server, http)
    sandbox_control.fault(endpoint="put", mode="reset", count=1)

    with pytest.raises(requests.ConnectionError), requests.Session() as session:
        session.put(sandbox_server.url + PUT, headers=headers, json=put_body(FRESH), timeout=5)
    after = call(http, sandbox_server, "put", headers)

    assert after.status_code == 204
    assert sandbox_control.calls()["put"] == 2
    statuses = [
        r["status"] for r in http.get(sandbox_server.url + "/_sandbox/requests").json()["requests"]
    ]
    assert statuses[-2:] == [None, 204]
