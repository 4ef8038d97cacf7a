"""One hard deadline per invocation: whatever is slow (AIR MILES dripping its answer, Secrets
Manager, the audit table, the idempotency table), the function answers before the Timeout
Lambda gives the invocation (the fake Lambda context's), in the documented error shape.

A slow AWS service is a real one that went quiet: an endpoint on loopback that accepts
connections and never answers, so botocore's own timeouts and retries are what is bounded.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.support import leaks
from tests.support.functions import SAVE, Function, assert_error, event, offer_event
from tests.support.inprocess import FAST_UPSTREAM, Deployed
from tests.support.sandbox_control import SandboxControl

# What Lambda leaves the invocation in these tests: less than the functions' Timeouts, and
# less than the old, unbounded paths took (a drip read to its end, botocore's four attempts
# of 2 s each).
TIMEOUT = 5.0
# 50 ms a byte: a whole answer (170 bytes at the least) takes over 8 s.
DRIP: dict[str, Any] = {"mode": "drip", "intervalMs": 50}
# What a 503's log line names for a quiet service (the start of `dependency`), and the name
# its answer gives it.
DEPENDENCIES = {"SECRETS_MANAGER": "secretsmanager:", "DYNAMODB": "dynamodb:", "KMS": "kms:"}
SERVICE_NAMES = {"SECRETS_MANAGER": "Secrets Manager", "DYNAMODB": "DynamoDB", "KMS": "KMS"}


def _answered_in_time(
    function: Function, request: dict[str, Any], timeout: float = TIMEOUT
) -> tuple[int, dict[str, str], Any]:
    started = time.monotonic()
    answer = function.call(request, timeout=timeout)
    assert time.monotonic() - started < timeout, "answered after the invocation's Timeout"
    _, _, body = answer
    assert set(body) == {"error", "correlationId"}  # the documented error shape
    return answer


@pytest.fixture
def quiet_endpoint() -> Iterator[str]:
    """An endpoint that takes connections (the kernel completes them) and never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as server:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


@pytest.fixture
def unhurried(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> dict[str, Function]:
    """Both functions with the template's own upstream settings (an 8 s budget, 5 s to read),
    and a reserve of 3 s: the invocation's time, not the budget, sets the deadline."""
    for name, value in deployed.template.function_environment("UpdateStateFunction").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DEADLINE_RESERVE_SECONDS", "3")
    return {name: deployed.load(name) for name in ("GetStateFunction", "UpdateStateFunction")}


def test_a_dripping_read_is_answered_before_the_timeout(
    unhurried: dict[str, Function], sandbox_control: SandboxControl, deployed: Deployed
):
    sandbox_control.fault("count", **DRIP)
    request = event("GET", "/v1/offers/states/count")
    assert_error(_answered_in_time(unhurried["GetStateFunction"], request), 504, "UPSTREAM_TIMEOUT")
    assert [i["outcome"] for i in deployed.audit_items()] == ["FAILED"]


def test_a_dripping_write_is_answered_before_the_timeout_its_outcome_unknown(
    unhurried: dict[str, Function], sandbox_control: SandboxControl, deployed: Deployed
):
    sandbox_control.fault("put", **DRIP, applied=True)
    request = offer_event(sandbox_control.untouched_offers(1)[0], SAVE)
    answer = _answered_in_time(unhurried["UpdateStateFunction"], request)
    body = assert_error(answer, 504, "OUTCOME_UNKNOWN")
    assert "may or may not have been applied" in body["error"]["message"]
    assert [i["outcome"] for i in deployed.audit_items()] == ["UNKNOWN"]
    assert sandbox_control.calls()["put"] == 1


@pytest.mark.parametrize(
    ("service", "function", "endpoint", "calls"),
    [
        ("SECRETS_MANAGER", "get_state", "count", 0),  # the secret: AIR MILES not called
        ("DYNAMODB", "get_state", "count", 1),  # the audit item: read, and not disclosed
        ("DYNAMODB", "update_state", "put", 0),  # the idempotency lock (a key): nothing sent
        ("KMS", "get_state", "count", 0),  # the pseudonym, made before AIR MILES is called
        ("KMS", "update_state", "put", 0),  # the pseudonym of the write-ahead item: nothing sent
    ],
    ids=["secret", "audit table", "idempotency table", "pseudonym key (read)", "pseudonym key"],
)
def test_a_slow_aws_service_is_answered_before_the_timeout(
    request: pytest.FixtureRequest,
    sandbox_control: SandboxControl,
    quiet_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    service: str,
    function: str,
    endpoint: str,
    calls: int,
):
    handler: Function = request.getfixturevalue(function)
    if endpoint == "put":
        headers = {"idempotency-key": str(uuid.uuid4())}
        call = offer_event(sandbox_control.untouched_offers(1)[0], SAVE, headers=headers)
    else:
        call = event("GET", "/v1/offers/states/count")
    with monkeypatch.context() as patched:  # for the function's clients, built at its call
        patched.setenv(f"AWS_ENDPOINT_URL_{service}", quiet_endpoint)
        answer = _answered_in_time(handler, call)
    body = assert_error(answer, 503, "DEPENDENCY_UNAVAILABLE")
    assert sandbox_control.calls()[endpoint] == calls
    # The one log line says why: the dependency, botocore's error, and when.
    [line] = leaks.log_lines("request failed")
    assert line["dependency"].startswith(DEPENDENCIES[service])
    assert line["awsError"] in {"ReadTimeoutError", "ConnectTimeoutError", "AwsTimeLimitReached"}
    # And the answer says it was slow, not that the key, the secret or the table is bad.
    name = SERVICE_NAMES[service]
    slow = f"{name} did not answer in time."
    if line["awsError"] == "AwsTimeLimitReached":
        slow = f"too little of the request's time was left to wait for {name}."
    assert body["error"]["message"].endswith(": " + slow)
    assert 0 < line["elapsedMs"] < TIMEOUT * 1000
    assert line["finalLeftMs"] > 0


@pytest.mark.parametrize(
    ("left", "headers"),
    [
        # 2 s of them kept in reserve: 0.2 s for the PUT, under the 0.25 s it needs.
        (2.2, {}),
        # Time for the PUT (0.6 s), but not for the AWS write that must come first (its
        # write-ahead item, or its idempotency lock: an attempt, with one left for the
        # outcome, within what the reserve leaves): not sent either, rather than a 503.
        (2.6, {}),
        (2.6, {"idempotency-key": "4f0c9d5e-3a43-4a8e-9c53-7e9b1f0d2a11"}),
    ],
    ids=["no time for the PUT", "no time for its audit item", "no time for its lock"],
)
def test_a_put_that_cannot_fit_in_the_time_left_is_not_sent_and_audited(
    update_state: Function,
    sandbox_control: SandboxControl,
    deployed: Deployed,
    left: float,
    headers: dict[str, str],
):
    request = offer_event(sandbox_control.untouched_offers(1)[0], SAVE, headers=headers)
    answer = _answered_in_time(update_state, request, timeout=left)
    body = assert_error(answer, 504, "UPSTREAM_TIMEOUT")
    assert "not sent" in body["error"]["message"]
    assert sandbox_control.calls()["put"] == 0
    [item] = deployed.audit_items()
    assert (item["outcome"], item["errorCode"]) == ("FAILED", "UPSTREAM_TIMEOUT")


@pytest.mark.parametrize(
    "slow", ["kms.GenerateMac", "secrets-manager.GetSecretValue"], ids=["pseudonym", "secret"]
)
def test_slow_work_before_air_miles_leaves_the_upstream_budget_whole(
    get_state: Function, sandbox_control: SandboxControl, deployed: Deployed, slow: str
):
    """A cold environment at a 256 MB function's CPU (0.15 of a vCPU) spends seconds before
    its first exchange with AIR MILES (building its AWS clients, making the pseudonym, reading
    the secret for the token it fetches under the lease): only the Timeout bounds that time,
    not the upstream budget (3 s in these tests), which starts with the first exchange. Stood
    in for here by an AWS call that takes longer than the budget."""
    budget = float(FAST_UPSTREAM["AIRMILES_TOTAL_BUDGET"])
    boto3.DEFAULT_SESSION.events.register_first(
        f"before-send.{slow}", lambda **_: time.sleep(budget + 0.5)
    )
    answer = get_state.call(event("GET", "/v1/offers/states/count"))
    assert answer[0] == 200, answer
    assert sandbox_control.calls()["count"] == 1
    assert [i["outcome"] for i in deployed.audit_items()] == ["SUCCEEDED"]
