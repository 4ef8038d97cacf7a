"""The whole product over HTTP: `python -m local.stack` on free ports, driven like a partner
app and a partner back end would."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
import requests

from local.sandbox.seed import CATALOGUE
from tests.support.stack import (
    RunningStack,
    child_pids,
    longest_answer_seconds,
    start_stack,
)
from tests.support.waiting import wait_until

MEMBER = "80000000110"
FRESH = [o.offer_id for o in CATALOGUE[:10]]


def test_a_member_labels_changes_and_finds_offers_and_each_call_is_audited(stack: RunningStack):
    already_audited = len(stack.audit_items())
    token = stack.token(MEMBER)
    page = [*FRESH[:5], CATALOGUE[40].offer_id]

    # Label a page of offers in one call.
    labelled = stack.request("GET", "/v1/offers/states", token, params={"offerId": ",".join(page)})
    assert labelled.status_code == 200
    assert [o["offerId"] for o in labelled.json()["offers"]] == page
    assert labelled.json()["offers"][-1]["saved"] is True
    assert not any(o["saved"] or o["optedIn"] for o in labelled.json()["offers"][:5])
    count_before = stack.request("GET", "/v1/offers/states/count", token).json()["count"]

    # Opt in to one, save another, then change my mind about it.
    body = {"states": [{"name": "OPT_IN", "value": "OPTED_IN"}]}
    assert stack.request("PUT", f"/v1/offers/{page[0]}/states", token, json=body).status_code == 200
    saved = {"states": [{"name": "SAVE", "value": "SAVED"}]}
    assert (
        stack.request("PUT", f"/v1/offers/{page[1]}/states", token, json=saved).status_code == 200
    )
    relabelled = stack.request("GET", "/v1/offers/states", token, params={"offerId": page[:2]})
    assert [(o["optedIn"], o["saved"]) for o in relabelled.json()["offers"]] == [
        (True, False),
        (False, True),
    ]
    unsave = {"states": [{"name": "SAVE", "value": "UNSAVED"}]}
    assert (
        stack.request("PUT", f"/v1/offers/{page[1]}/states", token, json=unsave).status_code == 200
    )

    # "My saved offers" and its count.
    found = stack.request("GET", "/v1/offers/states/find", token, params={"pageSize": 100}).json()
    found_ids = {o["offerId"] for o in found["offers"]}
    assert page[0] in found_ids
    assert page[1] not in found_ids
    count = stack.request("GET", "/v1/offers/states/count", token).json()["count"]
    assert count == found["totalCount"] == count_before + 1

    # Everything that touched the collector is in the audit trail, pseudonymously.
    items = stack.audit_items()[already_audited:]
    assert [i["action"] for i in items] == [
        "GET_STATES",
        "COUNT_STATES",
        "UPDATE_STATES",
        "UPDATE_STATES",
        "GET_STATES",
        "UPDATE_STATES",
        "FIND_STATES",
        "COUNT_STATES",
    ]
    assert all(i["outcome"] == "SUCCEEDED" for i in items)
    assert all(MEMBER not in str(i) for i in items)


def test_a_machine_token_writes_for_the_collector_its_header_names_and_needs_one(
    stack: RunningStack,
):
    token = stack.token(None)  # machine token
    other = "80000000001"
    answer = stack.request(
        "PUT",
        "/v1/offers/states",
        token,
        json={
            "stateChanges": [{"offerId": FRESH[2], "states": [{"name": "SAVE", "value": "SAVED"}]}]
        },
        headers={"Collector-Number": other, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert answer.status_code == 200
    assert stack.sandbox_control.states(other)[FRESH[2]] == {"SAVE": "SAVED"}
    without = stack.request("GET", "/v1/offers/states/count", token)
    assert (without.status_code, without.json()["error"]["code"]) == (400, "VALIDATION_ERROR")


def test_a_put_repeated_with_its_key_is_replayed_without_a_second_upstream_put(stack: RunningStack):
    token = stack.token(MEMBER)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"states": [{"name": "OPT_IN", "value": "OPTED_IN"}]}
    first = stack.request("PUT", f"/v1/offers/{FRESH[3]}/states", token, json=body, headers=key)
    second = stack.request("PUT", f"/v1/offers/{FRESH[3]}/states", token, json=body, headers=key)
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert stack.sandbox_control.calls()["put"] == 1


@pytest.mark.parametrize(
    "make_token",
    [
        lambda s: None,
        lambda s: "not-a-jwt",
        lambda s: s.token(MEMBER, ttl=-10),  # expired
        lambda s: s.token(MEMBER, audience="someone-else"),
        lambda s: s.token(MEMBER, extra={"iss": "https://evil.example/"}),
        lambda s: s.token(MEMBER, extra={"nbf": int(time.time()) + 600}),
        lambda s: jwt.encode({"sub": "x", "collector_number": MEMBER}, "k" * 32, algorithm="HS256"),
        lambda s: s.token(MEMBER)[:-4] + "AAAA",  # tampered signature
    ],
)
def test_gateway_refuses_missing_or_bad_tokens(stack: RunningStack, make_token):
    answer = stack.request("GET", "/v1/offers/states/count", make_token(stack))
    assert (answer.status_code, answer.json()) == (401, {"message": "Unauthorized"})
    assert stack.sandbox_control.calls()["count"] == 0


def test_gateway_refuses_a_token_without_the_route_scope(stack: RunningStack):
    read_only = stack.token(MEMBER, scopes=("offers/state.read",))
    answer = stack.request(
        "PUT",
        f"/v1/offers/{FRESH[0]}/states",
        read_only,
        json={"states": [{"name": "SAVE", "value": "SAVED"}]},
    )
    assert (answer.status_code, answer.json()) == (403, {"message": "Forbidden"})
    assert stack.request("GET", "/v1/offers/states/count", read_only).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/offers"),
        ("GET", "/v1/offers/states/"),
        ("DELETE", "/v1/offers/states"),
        ("POST", "/v1/offers/states"),
        ("PUT", "/v1/offers/states/find"),
        ("GET", "/_sandbox/calls"),
        ("PATCH", "/health"),
    ],
)
def test_undeclared_routes_are_not_found(stack: RunningStack, method: str, path: str):
    answer = stack.request(method, path, stack.token(MEMBER))
    assert (answer.status_code, answer.json()) == (404, {"message": "Not Found"})


def test_health_needs_no_token(stack: RunningStack):
    answer = stack.request("GET", "/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
    assert uuid.UUID(answer.headers["X-Correlation-Id"])


def test_an_upstream_fault_surfaces_as_its_error(stack: RunningStack):
    stack.sandbox_control.fault("find", "status", status=500)
    answer = stack.request("GET", "/v1/offers/states/find", stack.token(MEMBER))
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "UPSTREAM_ERROR"
    assert answer.json()["correlationId"] == answer.headers["X-Correlation-Id"]
    failed = [
        i for i in stack.audit_items() if i["correlationId"] == answer.json()["correlationId"]
    ]
    assert [(i["outcome"], i["upstreamStatus"]) for i in failed] == [("FAILED", 500)]


def test_concurrent_requests_get_their_own_environments(stack: RunningStack):
    """Four requests at once are served by four function environments at the same time: each
    one's COUNT is held at AIR MILES (a `timeout` fault) until all four have arrived there,
    none answered yet, and four environments are running; then they are let go. Served one
    after another, only one would ever arrive before its answer."""
    in_flight = 4
    token = stack.token(MEMBER)
    # A first round starts the environments (the pool starts one for each request it cannot
    # serve at once). Their cold starts can outlast, on a slow machine, the upstream budget of
    # a request already running (8 s from its invocation), which answers it before the others
    # arrive. The second round finds them started.
    _held_at_once(stack, token, in_flight)
    all_arrived, none_answered, environments, statuses = _held_at_once(stack, token, in_flight)

    assert all_arrived
    assert none_answered
    assert environments >= in_flight
    assert statuses == [200] * in_flight  # each retried its COUNT once let go


def _held_at_once(
    stack: RunningStack, token: str, in_flight: int
) -> tuple[bool, bool, int, list[int]]:
    """`in_flight` COUNT requests at once, each one's COUNT held at AIR MILES until all have
    arrived there or one is answered, then let go: (all arrived, none answered by then, the
    get-state environments running then, the statuses)."""
    correlation_ids = {str(uuid.uuid4()) for _ in range(in_flight)}
    stack.sandbox_control.fault("count", "timeout")  # held until cleared

    def count(correlation_id: str) -> requests.Response:
        headers = {"X-Correlation-Id": correlation_id}
        return stack.request("GET", "/v1/offers/states/count", token, headers=headers)

    def all_arrived() -> bool:
        held = stack.sandbox_control.requests()
        logged = {r["headers"].get("x-correlation-id") for r in held if r["endpoint"] == "count"}
        return correlation_ids <= logged

    with ThreadPoolExecutor(in_flight) as pool:
        answers = [pool.submit(count, correlation_id) for correlation_id in correlation_ids]
        # One is answered only once its upstream budget has run out while it was held.
        wait_until(
            lambda: all_arrived() or any(a.done() for a in answers), longest_answer_seconds()
        )
        arrived = all_arrived()
        none_answered = not any(answer.done() for answer in answers)  # after they all arrived
        environments = len(_environments(stack, "functions/get_state"))
        stack.sandbox_control.clear_faults()
        statuses = [answer.result().status_code for answer in answers]
    return arrived, none_answered, environments, statuses


def _environments(stack: RunningStack, code: str) -> set[int]:
    """The process ids of the stack's running function environments of the code in directory
    `code` (each a `python -m awslambdaric` process working in that directory)."""
    found = set()
    for pid in child_pids(stack.process.pid):
        with contextlib.suppress(OSError):  # a process that ended meanwhile
            argv = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
            cwd = os.readlink(f"/proc/{pid}/cwd")
            if "awslambdaric" in argv and cwd.rstrip("/").endswith(code):
                found.add(pid)
    return found


GATEWAY_LINE = re.compile(r"gateway [A-Z]+ /\S* \d{3} \d+\.\dms\n")
FUNCTION_LINE = re.compile(r"(GetState|UpdateState)Function [0-9a-f-]{36}: \S.*\n")
SCHEDULE_LINE = re.compile(r"schedule (TokenRefresher|ReconcilePending)Function: \S.*\n")


def _whole(line: str) -> bool:
    """A line the stack writes whole: a gateway request line, a gateway note about a
    function, or one JSON document from a function (a log record or a metric)."""
    if any(p.fullmatch(line) for p in (GATEWAY_LINE, FUNCTION_LINE, SCHEDULE_LINE)):
        return True
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def test_the_console_keeps_every_line_whole_under_load(stack: RunningStack):
    """16 requests at a time: the gateway's request lines (one thread each) and what the
    function environments print (their own processes) reach the console whole, never two
    merged into one, never one broken in two or followed by a blank one."""
    token = stack.token(MEMBER)
    first = len(stack.output)
    requests_made = 128
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda _: stack.request("GET", "/v1/offers/states/count", token),
                range(requests_made),
            )
        )

    def request_lines() -> int:  # the stack's output is read on another thread
        return sum(bool(GATEWAY_LINE.fullmatch(line)) for line in stack.output[first:])

    assert wait_until(lambda: request_lines() >= requests_made, 30)
    lines = stack.output[first:]
    assert [line for line in lines if not _whole(line)] == []
    assert sum(bool(GATEWAY_LINE.fullmatch(line)) for line in lines) == requests_made
    assert any(line.startswith("{") for line in lines)  # the functions' output is there too


def _messages(stack: RunningStack, text: str) -> int:
    """How many of the functions' log records so far say `text`."""
    return sum(f'"message":"{text}"' in line.replace(" ", "") for line in stack.output)


def test_snapstart_hooks_run_once_per_environment_and_schedules_run_locally(tmp_path: Path):
    """Through Lambda's runtime client in SnapStart mode: each environment's before-snapshot
    hook runs after its init, its after-restore hook at its first invocation, each once. The
    scheduled functions run on their (shortened) periods, one console line a run."""
    stack = start_stack(
        tmp_path, {"LOCAL_RECONCILE_SECONDS": "1", "LOCAL_TOKEN_REFRESH_SECONDS": "1"}
    )
    try:
        before, after = "SnapStart:before-snapshothookran", "SnapStart:after-restorehookran"

        # One environment of each function started before the gateway opened. Their log
        # lines come through pipes read on other threads: waited for, generously.
        def hooks() -> tuple[int, int]:
            return _messages(stack, before), _messages(stack, after)

        assert wait_until(lambda: hooks() == (2, 0), 30), hooks()
        for _ in range(3):
            assert stack.request("GET", "/health").status_code == 200
        assert wait_until(lambda: hooks() == (2, 1), 30), hooks()

        def runs(function: str) -> int:
            return sum(line.startswith(f"schedule {function}: {{") for line in stack.output)

        assert wait_until(lambda: runs("ReconcilePendingFunction") >= 2, 30)
        assert wait_until(lambda: runs("TokenRefresherFunction") >= 3, 30)  # its first, two more
    finally:
        stack.stop()
    reconciled = [line for line in stack.output if line.startswith("schedule Reconcile")]
    assert '"reconciled":0' in reconciled[0], reconciled
