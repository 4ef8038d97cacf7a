"""The faults that misbehave on the wire with the endpoint's own answer (truncate, drip,
badGzip), and `applied`: whether a faulted PUT's change is stored."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from http.client import IncompleteRead
from urllib.parse import urlencode

import pytest
import requests

from local.sandbox import TOKEN_PATH, Sandbox
from tests.sandbox.helpers import (
    FRESH,
    MAIN,
    PATHS,
    PUT,
    m2m_headers,
    offer,
    put_body,
    token_form,
)
from tests.support.raw_http import RawAnswer, raw_exchange, read_answer, request_bytes
from tests.support.sandbox_control import SandboxControl
from tests.support.waiting import wait_until

# (the fault's endpoint, the endpoint called): every counted endpoint, and `*` on two of them.
CASES = [
    ("token", "token"),
    ("health", "health"),
    ("find", "find"),
    ("get", "get"),
    ("count", "count"),
    ("put", "put"),
    ("*", "get"),
    ("*", "token"),
]
CASE_IDS = [f"{fault}-on-{called}" for fault, called in CASES]
# How each endpoint's own answer begins (PUT's: the changes echoed, see _put_body_text).
ANSWER_STARTS = {
    "token": b'{"access_token": "ey',
    "health": b'[{"healthy": true, "timestamp": "',
    "find": b'{"offers": [{"offerId": "',
    "get": b'{"offers": [{"offerId": "',
    "count": b'{"count": ',
    "put": b'{"stateChanges": [{"offerId": "',
}


def _put_body_text() -> bytes:
    return json.dumps(put_body(FRESH)).encode()


def wire_request(sandbox_server: Sandbox, http: requests.Session, endpoint: str) -> bytes:
    """A correct call of `endpoint`, as bytes (a machine token, for the collector MAIN).
    It fetches a token: build it before adding a fault that could catch that call."""
    if endpoint == "token":
        form = urlencode(token_form()).encode()
        return request_bytes(
            "POST",
            TOKEN_PATH,
            "Content-Type: application/x-www-form-urlencoded",
            f"Content-Length: {len(form)}",
            body=form,
        )
    headers = [f"{name}: {value}" for name, value in m2m_headers(sandbox_server, http).items()]
    if endpoint == "put":
        body = _put_body_text()
        return request_bytes(
            "PUT",
            PUT,
            *headers,
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            body=body,
        )
    query = f"?offerId={offer(40)}" if endpoint == "get" else ""  # offer 40: MAIN has a state
    return request_bytes("GET", PATHS[endpoint] + query, *headers)


def _last_call(http: requests.Session, sandbox_server: Sandbox) -> tuple[str, int | None]:
    """The endpoint and status of the last counted call, from the request log."""
    logged = http.get(sandbox_server.url + "/_sandbox/requests", timeout=5).json()["requests"][-1]
    return logged["endpoint"], logged["status"]


def _stored(control: SandboxControl) -> bool:
    return FRESH in [entry["offerId"] for entry in control.raw_states(MAIN)["offers"]]


# ---------------------------------------------------------------------------- truncate


@pytest.mark.parametrize(("fault", "called"), CASES, ids=CASE_IDS)
def test_truncate_announces_the_whole_answer_sends_half_its_body_and_closes(
    sandbox_control, sandbox_server, http, fault, called
):
    request = wire_request(sandbox_server, http, called)
    sandbox_control.fault(endpoint=fault, mode="truncate")

    # http.client raises IncompleteRead only on a clean close (a FIN) short of Content-Length.
    with pytest.raises(IncompleteRead) as cut:
        raw_exchange(sandbox_server.port, request)

    sent, missing = cut.value.partial, cut.value.expected
    assert missing is not None  # http.client knew the length from Content-Length
    announced = len(sent) + missing
    assert len(sent) == announced // 2 > 0
    start = ANSWER_STARTS[called]
    common = min(len(sent), len(start))
    assert sent[:common] == start[:common]  # the start of the endpoint's own answer
    assert _last_call(http, sandbox_server) == (called, 200)  # logged with its status
    assert sandbox_control.calls()[called] == 1  # and counted


def test_requests_raises_chunked_encoding_error_on_a_truncated_answer(
    sandbox_control, sandbox_server, http
):
    headers = m2m_headers(sandbox_server, http)
    sandbox_control.fault(endpoint="count", mode="truncate")

    with pytest.raises(requests.exceptions.ChunkedEncodingError), requests.Session() as session:
        session.get(sandbox_server.url + PATHS["count"], headers=headers, timeout=5)


# ---------------------------------------------------------------------------- badGzip


@pytest.mark.parametrize(("fault", "called"), CASES, ids=CASE_IDS)
def test_bad_gzip_labels_the_plain_answer_gzip(
    sandbox_control, sandbox_server, http, fault, called
):
    request = wire_request(sandbox_server, http, called)
    sandbox_control.fault(endpoint=fault, mode="badGzip")

    answer = raw_exchange(sandbox_server.port, request)  # http.client does not decode bodies

    assert answer.status == 200
    assert answer.headers["Content-Encoding"] == "gzip"
    assert int(answer.headers["Content-Length"]) == len(answer.body)
    assert answer.body.startswith(ANSWER_STARTS[called])
    assert answer.json()  # plain JSON, not gzip
    assert _last_call(http, sandbox_server) == (called, 200)  # counted, its status logged


def test_requests_raises_content_decoding_error_on_bad_gzip(sandbox_control, sandbox_server, http):
    headers = m2m_headers(sandbox_server, http)
    sandbox_control.fault(endpoint="get", mode="badGzip")

    with pytest.raises(requests.exceptions.ContentDecodingError), requests.Session() as session:
        session.get(sandbox_server.url + PATHS["get"], headers=headers, params={"offerId": FRESH})


@pytest.mark.parametrize("put_status", [204, 200])
def test_bad_gzip_on_put_answers_200_echoing_the_changes_and_stores_them(
    sandbox_control, sandbox_server, http, put_status
):
    http.post(sandbox_server.url + "/_sandbox/config", json={"putStatus": put_status}, timeout=5)
    request = wire_request(sandbox_server, http, "put")
    sandbox_control.fault(endpoint="put", mode="badGzip")

    answer = raw_exchange(sandbox_server.port, request)

    assert answer.status == 200
    assert answer.json() == {"stateChanges": put_body(FRESH)["stateChanges"]}
    assert _stored(sandbox_control)


# ---------------------------------------------------------------------------- drip


@pytest.mark.parametrize(("fault", "called"), CASES, ids=CASE_IDS)
def test_drip_sends_the_whole_answer_one_byte_an_interval(
    sandbox_control, sandbox_server, http, fault, called
):
    request = wire_request(sandbox_server, http, called)
    sandbox_control.fault(endpoint=fault, mode="drip", intervalMs=1)

    with socket.create_connection(("127.0.0.1", sandbox_server.port), timeout=5) as connection:
        started = time.monotonic()
        connection.sendall(request)
        received = read_answer(connection)
        seconds = time.monotonic() - started

    assert received.startswith(b"HTTP/1.1 200 ")
    body = received.partition(b"\r\n\r\n")[2]
    assert body.startswith(ANSWER_STARTS[called])
    assert json.loads(body)
    assert seconds >= len(received) * 0.001  # the sandbox_server waits an interval before each byte
    assert _last_call(http, sandbox_server) == (called, 200)  # logged with its status
    assert sandbox_control.calls()[called] == 1  # and counted


def test_drip_status_line_comes_a_byte_a_read_and_clearing_faults_ends_it(
    sandbox_control, sandbox_server, http
):
    request = wire_request(sandbox_server, http, "find")
    sandbox_control.fault(endpoint="find", mode="drip")  # the default: 200 ms a byte

    with socket.create_connection(("127.0.0.1", sandbox_server.port), timeout=5) as connection:
        connection.sendall(request)
        first, second = connection.recv(65536), connection.recv(65536)
        http.delete(sandbox_server.url + "/_sandbox/faults", timeout=5)
        rest = b""
        while chunk := connection.recv(65536):  # the socket's 5 s timeout guards the wait
            rest += chunk

    assert (first, second) == (b"H", b"T")
    assert b"\r\n\r\n" not in first + second + rest  # cut off long before its headers ended


def test_drip_ends_when_the_client_goes_away():
    lines: list[str] = []
    with Sandbox(port=0, log=lines.append) as server, requests.Session() as http:
        request = wire_request(server, http, "count")
        SandboxControl(server.url).fault(endpoint="count", mode="drip", intervalMs=20)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection:
            connection.sendall(request)
            assert connection.recv(1) == b"H"

        assert wait_until(lambda: any("dripped, cut after" in line for line in lines))


def test_stopping_the_sandbox_ends_a_drip():
    lines: list[str] = []
    with Sandbox(port=0, log=lines.append) as server, requests.Session() as http:
        request = wire_request(server, http, "health")
        SandboxControl(server.url).fault(endpoint="*", mode="drip")
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection:
            connection.sendall(request)
            assert connection.recv(1) == b"H"
            server.stop()
            with contextlib.suppress(ConnectionResetError):
                while connection.recv(65536):  # the socket's 5 s timeout guards the wait
                    pass

        assert wait_until(lambda: any("dripped, cut after" in line for line in lines))


def test_requests_with_a_read_timeout_reads_a_drip_to_its_end(
    sandbox_control, sandbox_server, http
):
    # Every byte comes inside the read timeout: the timeout never fires, however long it takes.
    headers = m2m_headers(sandbox_server, http)
    sandbox_control.fault(endpoint="count", mode="drip", intervalMs=2)

    with requests.Session() as session:
        answer = session.get(sandbox_server.url + PATHS["count"], headers=headers, timeout=(5, 0.5))

    assert answer.json() == {"count": 4}


# ---------------------------------------------------------------------------- applied


def _faulted_put(sandbox_server: Sandbox, headers: dict, read_timeout: float) -> None:
    """One PUT of FRESH for MAIN whose answer misbehaves: whatever the client makes of it."""
    with contextlib.suppress(requests.RequestException), requests.Session() as session:
        session.put(
            sandbox_server.url + PUT,
            headers=headers,
            data=_put_body_text(),
            timeout=(5, read_timeout),
        )


@pytest.mark.parametrize("applied", [True, False])
@pytest.mark.parametrize("mode", ["timeout", "reset", "truncate", "drip"])
def test_applied_says_whether_a_put_without_an_answer_is_stored(
    sandbox_control, sandbox_server, http, mode, applied
):
    headers = m2m_headers(sandbox_server, http)
    paced = {"intervalMs": 1} if mode == "drip" else {}
    sandbox_control.fault(endpoint="put", mode=mode, applied=applied, count=1, **paced)

    _faulted_put(sandbox_server, headers, read_timeout=1)
    # Applied: stored before the sandbox holds, resets or answers (`timeout`: the client may
    # give up first on a busy machine). Not applied: not stored by the time the client is done.
    stored = wait_until(lambda: _stored(sandbox_control)) if applied else _stored(sandbox_control)
    http.delete(sandbox_server.url + "/_sandbox/faults", timeout=5)  # lets go of a held PUT

    assert stored is applied
    assert _stored(sandbox_control) is applied  # a released PUT stores nothing after all


def test_delay_applied_stores_the_change_before_the_wait(sandbox_control, sandbox_server, http):
    headers = m2m_headers(sandbox_server, http)
    sandbox_control.fault(endpoint="put", mode="delay", delayMs=10_000, applied=True, count=1)

    _faulted_put(sandbox_server, headers, read_timeout=0.5)  # gives up during the wait

    assert wait_until(lambda: _stored(sandbox_control))
    assert _last_call(http, sandbox_server) == ("put", None)  # still unanswered: in its wait


def test_delay_not_applied_stores_the_change_only_after_the_wait(
    sandbox_control, sandbox_server, http
):
    headers = m2m_headers(sandbox_server, http)
    sandbox_control.fault(endpoint="put", mode="delay", delayMs=3000, applied=False, count=1)

    _faulted_put(sandbox_server, headers, read_timeout=0.5)  # gives up during the wait
    stored_during_the_wait = _stored(sandbox_control)

    assert not stored_during_the_wait
    assert wait_until(lambda: _stored(sandbox_control))


def test_a_dripped_put_not_applied_still_answers_its_echo(sandbox_control, sandbox_server, http):
    # The answer cannot tell the client whether the change landed: only a re-read can.
    request = wire_request(sandbox_server, http, "put")
    sandbox_control.fault(endpoint="put", mode="drip", intervalMs=1, applied=False)

    answer: RawAnswer = raw_exchange(sandbox_server.port, request)

    assert answer.status == 200
    assert answer.json() == {"stateChanges": put_body(FRESH)["stateChanges"]}
    assert not _stored(sandbox_control)


def test_an_invalid_put_under_an_applied_fault_stores_nothing(
    sandbox_control, sandbox_server, http
):
    headers = m2m_headers(sandbox_server, http)
    sandbox_control.fault(endpoint="put", mode="truncate", applied=True)
    bad = put_body(FRESH, value="GONE")

    with pytest.raises(requests.exceptions.ChunkedEncodingError), requests.Session() as session:
        session.put(sandbox_server.url + PUT, headers=headers, json=bad, timeout=5)

    assert not _stored(sandbox_control)
    assert _last_call(http, sandbox_server) == ("put", 400)  # its own answer, cut: a 400
