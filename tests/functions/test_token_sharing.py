"""Both functions share one AIR MILES token through the token table (offer_state.auth), and say
so when they cannot: a store that fails is a `TokenStoreFailures` metric and a log line, a wait
for another environment's token that runs out a `TokenFallbackFetches` and a log line; the
request is answered either way. (The shared token's fault cases: tests/reliability.)"""

from __future__ import annotations

import socket
import sys
import time

import boto3
import pytest

from offer_state.token_store import ITEM_KEY
from tests.support import aws_faults, leaks
from tests.support.functions import SAVE, Function, event, offer_event
from tests.support.inprocess import Deployed
from tests.support.metrics import emitted
from tests.support.sandbox_control import SandboxControl

COUNT = ("GET", "/v1/offers/states/count")


def _from_now_on(capsys: pytest.CaptureFixture[str]) -> None:
    """What the setup printed is checked for leaks, and not counted by `_said`."""
    _said(capsys)


def _said(capsys: pytest.CaptureFixture[str]) -> tuple[str, list[str]]:
    """(what the functions printed: their metrics, their log lines), still left to the leak
    check."""
    out, err = capsys.readouterr()
    sys.stdout.write(out)
    sys.stderr.write(err)
    recorded = leaks.take()
    for source, text in recorded:
        leaks.record(source, text)
    return out, [text for source, text in recorded if source == "log line"]


def test_every_environment_of_both_functions_uses_one_token(
    deployed: Deployed,
    get_state: Function,
    update_state: Function,
    sandbox_control: SandboxControl,
):
    offer = sandbox_control.untouched_offers(1)[0]
    assert get_state.call(event(*COUNT))[0] == 200
    another_reader = deployed.load("GetStateFunction")  # the environment has get-state's
    assert another_reader.call(event(*COUNT))[0] == 200
    assert update_state.call(offer_event(offer, SAVE))[0] == 200
    # Each environment its own token, as before: three. One deployment, one token.
    assert sandbox_control.calls()["token"] == 1


def test_a_store_that_fails_is_counted_logged_and_the_request_answered(
    deployed: Deployed,
    get_state: Function,
    sandbox_control: SandboxControl,
    capsys: pytest.CaptureFixture[str],
):
    # The store's DynamoDB client (built now rather than at the first token need) cannot reach
    # DynamoDB; the audit trail's can.
    dynamodb, _kms = get_state.module.service._token_store_clients
    aws_faults.unreachable(dynamodb, "GetItem")
    _from_now_on(capsys)
    for _ in range(3):
        assert get_state.call(event(*COUNT))[0] == 200
    out, logged = _said(capsys)
    # Once: the store is left alone for its cool-down, and the environment's own token serves.
    assert [value for _, value in emitted(out, "TokenStoreFailures")] == [1.0]
    [line] = [text for text in logged if "shared token store failed" in text]
    assert '"operation":"GetItem"' in line
    assert '"reason":"EndpointConnectionError"' in line
    assert sandbox_control.calls()["token"] == 1


def test_a_store_that_goes_quiet_is_left_in_time_and_the_request_answered(
    get_state: Function,
    sandbox_control: SandboxControl,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
):
    # The store's DynamoDB is an endpoint that takes connections and never answers (the
    # audit trail's DynamoDB answers): its one short attempt times out, inside the deadline.
    with socket.create_server(("127.0.0.1", 0), backlog=16) as quiet:
        with monkeypatch.context() as patched:  # for the store's clients alone, built now
            patched.setenv(
                "AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{quiet.getsockname()[1]}"
            )
            get_state.module.service._token_store_clients  # noqa: B018 - built here
        _from_now_on(capsys)
        invocation = 5.0
        started = time.monotonic()
        status, _, _ = get_state.call(event(*COUNT), timeout=invocation)
        took = time.monotonic() - started
    assert status == 200
    # One attempt of at most 1 s (0.5 s to connect, 0.5 s to read), then a token of its own:
    # within the invocation's time (botocore's defaults would wait 60 s, three times).
    assert took < invocation, f"answered after the invocation's {invocation} s: {took:.1f} s"
    out, logged = _said(capsys)
    assert [value for _, value in emitted(out, "TokenStoreFailures")] == [1.0]
    [line] = [text for text in logged if "shared token store failed" in text]
    assert '"operation":"GetItem"' in line and '"reason":"ReadTimeoutError"' in line
    assert sandbox_control.calls()["token"] == 1


def test_a_wait_that_runs_out_is_counted_logged_and_the_request_answered(
    deployed: Deployed,
    get_state: Function,
    sandbox_control: SandboxControl,
    capsys: pytest.CaptureFixture[str],
):
    # Another environment holds the lease and has not written its token; this invocation has
    # no time to wait for it (3.6 s: the upstream deadline 1.6 s, half the budget kept).
    boto3.client("dynamodb").put_item(
        TableName=deployed.refs["TokenTable"],
        Item={
            "pk": {"S": ITEM_KEY},
            "leaseOwner": {"S": "busy"},
            "leaseUntil": {"N": str(time.time() + 60)},
        },
    )
    _from_now_on(capsys)
    assert get_state.call(event(*COUNT), timeout=3.6)[0] == 200
    out, logged = _said(capsys)
    assert [value for _, value in emitted(out, "TokenFallbackFetches")] == [1.0]
    assert any("no shared token came in time" in text for text in logged)
    assert sandbox_control.calls()["token"] == 1
    # Its token is offered to the store: the next environment takes it.
    assert deployed.load("GetStateFunction").call(event(*COUNT))[0] == 200
    assert sandbox_control.calls()["token"] == 1


def test_a_new_token_is_logged_by_its_id_only(
    deployed: Deployed, get_state: Function, capsys: pytest.CaptureFixture[str]
):
    _from_now_on(capsys)
    assert get_state.call(event(*COUNT))[0] == 200
    _, logged = _said(capsys)
    [line] = [text for text in logged if "shared token published" in text]
    [item] = deployed.table_items("TokenTable")
    assert f'"tokenId":"{item["tokenId"]}"' in line
