"""Both functions read the one AIR MILES token the refresher writes (offer_state.auth,
offer_state.refresher), and say so when they cannot: the store or the refresher failing is a
`TokenStoreFailures` metric and a log line; a token of the environment's own is a
`TokenFallbackFetches` and a log line; the request is answered either way. (The token's
scenarios, counted at the sandbox: tests/reliability/test_shared_token.py.)"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable

import pytest

from tests.support import aws_faults, leaks
from tests.support.functions import SAVE, Function, event, offer_event
from tests.support.inprocess import PATIENT_TIMEOUT, Deployed, InProcessRefresher
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


def test_every_environment_of_both_functions_reads_the_one_token_the_refresher_wrote(
    refresher: InProcessRefresher,
    environments: Callable[..., list[Function]],
    deployed: Deployed,
    sandbox_control: SandboxControl,
    capsys: pytest.CaptureFixture[str],
):
    offer = sandbox_control.untouched_offers(1)[0]
    readers = environments(2)
    [writer] = environments(1, "UpdateStateFunction")
    _from_now_on(capsys)
    for reader in readers:  # the first found none stored: it asked, and waited
        assert reader.call(event(*COUNT), timeout=PATIENT_TIMEOUT)[0] == 200
    assert writer.call(offer_event(offer, SAVE), timeout=PATIENT_TIMEOUT)[0] == 200
    assert sandbox_control.calls()["token"] == 1
    assert refresher.outcomes() == ["refreshed"]
    out, logged = _said(capsys)
    assert emitted(out, "TokenFallbackFetches") == []
    assert emitted(out, "TokenStoreFailures") == []
    # The refresher logs the token by its id only, and says how fresh the stored one is.
    [line] = [text for text in logged if "token refresher: refreshed" in text]
    assert f'"tokenId":"{deployed.token_item()["tokenId"]["S"]}"' in line
    assert [value for _, value in emitted(out, "StoredTokenOverdueSeconds")] == [0.0]


@pytest.mark.parametrize(
    ("operation", "reason"),
    [("Invoke", "ResourceNotFoundException"), ("GetItem", "EndpointConnectionError")],
    ids=["no refresher", "the store unreachable"],
)
def test_a_store_or_refresher_that_fails_is_counted_logged_and_the_request_answered(
    get_state: Function,
    sandbox_control: SandboxControl,
    capsys: pytest.CaptureFixture[str],
    operation: str,
    reason: str,
):
    # No refresher answers the Invoke (moto runs no function), or the store's DynamoDB client
    # (built now rather than at the first token need) cannot reach DynamoDB (the audit
    # trail's can): the environment does not wait for a token that cannot come.
    if operation == "GetItem":
        aws_faults.unreachable(get_state.module.service._token_client("dynamodb"), "GetItem")
    _from_now_on(capsys)
    for _ in range(3):
        assert get_state.call(event(*COUNT))[0] == 200
    out, logged = _said(capsys)
    # Once: its own token then serves for the store's cool-down.
    assert [value for _, value in emitted(out, "TokenStoreFailures")] == [1.0]
    assert [value for _, value in emitted(out, "TokenFallbackFetches")] == [1.0]
    [line] = [text for text in logged if "token store failed" in text]
    assert f'"operation":"{operation}"' in line and f'"reason":"{reason}"' in line
    assert any("fetches its own" in text for text in logged)
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
            get_state.module.service._token_client("dynamodb")
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
    [line] = [text for text in logged if "token store failed" in text]
    assert '"operation":"GetItem"' in line and '"reason":"ReadTimeoutError"' in line
    assert sandbox_control.calls()["token"] == 1


def test_no_token_in_time_is_a_fallback_counted_logged_and_answered(
    refresher: InProcessRefresher,
    environments: Callable[..., list[Function]],
    sandbox_control: SandboxControl,
    capsys: pytest.CaptureFixture[str],
):
    # The refresher does not run before this invocation has waited what it may (half of its
    # 3 s budget): it fetches a token of its own; the refresher's comes later and is stored.
    [reader] = environments(1, AIRMILES_TOTAL_BUDGET="3")
    refresher.hold.clear()
    _from_now_on(capsys)
    assert reader.call(event(*COUNT))[0] == 200
    refresher.hold.set()
    refresher.api.wait()
    out, logged = _said(capsys)
    assert [value for _, value in emitted(out, "TokenFallbackFetches")] == [1.0]
    assert emitted(out, "TokenStoreFailures") == []
    [line] = [text for text in logged if "fetches its own" in text]
    assert '"reason":"no token came in time"' in line
    assert sandbox_control.calls()["token"] == 2
    assert refresher.outcomes() == ["refreshed"]
