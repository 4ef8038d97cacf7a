"""The deployment's one AIR MILES token (offer_state.refresher writes it, offer_state.auth reads
it) under the cases the design names: a cold burst against a slow token endpoint, a store that
throttles, every token revoked, the refresher down, KMS denied, a corrupt item, refreshers that
overlap. Token requests are counted where AIR MILES counts them, at the sandbox
(`GET /_sandbox/calls`); the functions run in-process, the refresher behind a local Lambda
Invoke API (tests/support/inprocess.py). Nothing here depends on the machine's speed: a wait
has seconds to spare, and a race is a barrier."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import boto3
import pytest

from offer_state.client import Collector
from offer_state.refresher import refresh_time
from offer_state.token_store import ITEM_KEY, token_id
from tests.support import aws_faults, leaks
from tests.support.clock import FakeClock
from tests.support.context import lambda_context
from tests.support.functions import MEMBER, SAVE, Function, event, offer_event
from tests.support.inprocess import PATIENT_TIMEOUT, Deployed, InProcessRefresher
from tests.support.metrics import emitted
from tests.support.sandbox_control import SandboxControl

COUNT = ("GET", "/v1/offers/states/count")


@pytest.fixture
def atomic_writes() -> Iterator[None]:
    """In-process moto applies one DynamoDB request at a time, as DynamoDB applies the writes
    to one item: its conditional writes are otherwise steps that other threads interleave
    (the claim's exclusion itself is shown against dynalite, test_token_claim.py)."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()  # (re-entrant: one backend method may call another)

    def serialised(original: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return call

    names = ("get_item", "put_item", "update_item", "delete_item")
    originals = {name: serialised(getattr(DynamoDBBackend, name)) for name in names}
    with mock.patch.multiple(DynamoDBBackend, **originals):
        yield


def _count(function: Function, timeout: float = PATIENT_TIMEOUT) -> int:
    status, _, body = function.call(event(*COUNT), timeout=timeout)
    assert status == 200, body
    return body["count"]


def _count_in_client(function: Function) -> int:
    """COUNT through the environment's AIR MILES client, inside an invocation's deadline."""
    service = function.module.service
    deadline = service.deadline(lambda_context(function.logical_id, 256, PATIENT_TIMEOUT))
    with deadline.current():
        return service.client.count(Collector(MEMBER), deadline=deadline.upstream)


def _reads(function: Function) -> list[int]:
    """[the GetItems the environment's token store makes from now on]: counted before any
    handler of a test's may answer one instead of DynamoDB."""
    reads = [0]

    def counted(**_: Any) -> None:
        reads[0] += 1

    client = function.module.service._token_client("dynamodb")
    client.meta.events.register("before-parameter-build.dynamodb.GetItem", counted)
    return reads


def _past_refresh_time(function: Function, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The environment's token cache on a clock a second past the stored token's refresh time:
    moved on by the test alone."""
    store = function.module.service.token_store()
    assert store is not None
    clock = FakeClock(start=store.read().refresh_at + 1)
    monkeypatch.setattr(function.module.service.client.tokens, "_clock", clock)
    return clock


def _in_threads(calls: list[Callable[[], Any]]) -> list[Any]:
    """Every call at once, each in a thread of its own; their answers (or their errors)."""
    answers: list[Any] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(n: int) -> None:
        start.wait()
        try:
            answers[n] = calls[n]()
        except BaseException as exc:  # noqa: BLE001 - returned to the test
            answers[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


# ---------------------------------------------------------------------------- reading


def test_a_cold_burst_against_a_slow_token_endpoint_asks_for_at_most_two_tokens(
    refresher: InProcessRefresher,
    environments: Callable[..., list[Function]],
    sandbox_control: SandboxControl,
    atomic_writes: None,
    capsys: pytest.CaptureFixture[str],
):
    # 32 environments start at once with no token stored, and the token endpoint takes 5 s:
    # they ask the refresher and, seeing its claim, wait for its token rather than fetch their
    # own (which would come no sooner), where a token each would have been 32 requests.
    sandbox_control.fault("token", "delay", delayMs=5000)
    burst = environments(32)
    # Through each environment's own client, in an invocation's deadline: Powertools' metrics,
    # one set per process, are not for 32 invocations at once in one process.
    answers = _in_threads([functools.partial(_count_in_client, f) for f in burst])
    assert [answer for answer in answers if not isinstance(answer, int)] == []
    assert sandbox_control.calls()["token"] <= 2
    assert refresher.outcomes().count("refreshed") == 1
    assert sum(f.module.service.client.tokens.fetches for f in burst) == 0  # no fallback


def test_a_throttled_read_is_read_again_with_backoff_within_the_deadline(
    environments: Callable[..., list[Function]],
    sandbox_control: SandboxControl,
    capsys: pytest.CaptureFixture[str],
):
    [first] = environments(1)
    _count(first)  # the refresher stored a token
    [throttled] = environments(1)
    client = throttled.module.service._token_client("dynamodb")
    refused = aws_faults.error_answer(aws_faults.THROTTLED["dynamodb"])
    left = [3]  # the next three reads are throttled, then DynamoDB answers again

    def throttle(**_: Any) -> Any:
        if left[0]:
            left[0] -= 1
            return refused
        return None

    client.meta.events.register_first("before-call.dynamodb.GetItem", throttle)
    capsys.readouterr()
    started = time.monotonic()
    _count(throttled)
    assert time.monotonic() - started < PATIENT_TIMEOUT
    assert left == [0]
    assert sandbox_control.calls()["token"] == 1  # the stored token, read on the fourth try
    out, _ = capsys.readouterr()
    assert [value for _, value in emitted(out, "TokenStoreFailures")] == [1.0]  # once
    assert emitted(out, "TokenFallbackFetches") == []


def test_a_store_throttled_throughout_costs_one_fallback_inside_the_deadline(
    environments: Callable[..., list[Function]],
    sandbox_control: SandboxControl,
    capsys: pytest.CaptureFixture[str],
):
    [throttled] = environments(1)
    aws_faults.throttled(throttled.module.service._token_client("dynamodb"), "GetItem")
    capsys.readouterr()
    started = time.monotonic()
    for _ in range(3):
        _count(throttled)
    assert time.monotonic() - started < PATIENT_TIMEOUT
    out, _ = capsys.readouterr()
    assert [value for _, value in emitted(out, "TokenFallbackFetches")] == [1.0]
    assert sandbox_control.calls()["token"] == 1  # its own, used for the store's cool-down


def test_a_stored_token_past_its_refresh_time_is_used_while_its_successor_is_looked_for(
    refresher: InProcessRefresher,
    environments: Callable[..., list[Function]],
    deployed: Deployed,
    sandbox_control: SandboxControl,
    monkeypatch: pytest.MonkeyPatch,
):
    [reader] = environments(1)
    _count(reader)  # the refresher stored a token (a day's), which the reader holds
    clock = _past_refresh_time(reader, monkeypatch)  # due by the reader's clock, not replaced
    reads = _reads(reader)
    _count(reader)
    refresher.api.wait()
    assert reads == [1]  # read again at its refresh time, and used
    assert refresher.outcomes() == ["refreshed", "fresh"]  # asked (not due by its own clock)
    clock.advance(0.5)
    _count(reader)
    assert reads == [1]  # used as it is for a second
    clock.advance(1)
    _count(reader)
    refresher.api.wait()
    assert reads == [2]  # then read again ...
    assert len(refresher.runs) == 2  # ... but the refresher asked at most every 5 s
    # The refresher replaces it, on a clock a second past the refresh time as well.
    late = float(deployed.token_item()["refreshAt"]["N"]) + 1
    writer = refresher._idle[0]
    monkeypatch.setattr(writer.tokens, "_clock", lambda: late)  # its successor's issuedAt
    assert writer.run({}, _context(refresher)(), wall=lambda: late)["outcome"] == "refreshed"
    clock.advance(1)
    _count(reader)
    assert reads == [3]  # the successor, read and held until its own refresh time:
    clock.advance(600)
    _count(reader)
    assert reads == [3]  # no more reads
    assert sandbox_control.calls()["token"] == 2


def test_a_store_that_fails_leaves_the_held_token_in_use_and_the_store_alone_a_while(
    environments: Callable[..., list[Function]],
    sandbox_control: SandboxControl,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    [reader] = environments(1)
    _count(reader)
    clock = _past_refresh_time(reader, monkeypatch)  # the token held is read for again
    service = reader.module.service
    stop_throttling = aws_faults.throttled(service._token_client("dynamodb"), "GetItem")
    reads = _reads(reader)
    capsys.readouterr()
    cooldown = service.settings.client.token_store_cooldown
    for _ in range(3):
        _count(reader)
        clock.advance((cooldown - 1) / 3)
    assert reads == [1]  # throttled once, then left alone: the token held is still valid
    clock.advance(2)
    stop_throttling()
    _count(reader)
    assert reads == [2]  # read again after the store's cool-down
    out, _ = capsys.readouterr()
    assert [value for _, value in emitted(out, "TokenStoreFailures")] == [1.0]
    assert emitted(out, "TokenFallbackFetches") == []
    assert sandbox_control.calls()["token"] == 1


def test_every_token_revoked_costs_one_refresh(
    refresher: InProcessRefresher,
    environments: Callable[..., list[Function]],
    sandbox_control: SandboxControl,
):
    readers = environments(3)
    writers = environments(2, "UpdateStateFunction")
    offers = sandbox_control.untouched_offers(2)
    for reader in readers:
        _count(reader)
    for writer, offer in zip(writers, offers, strict=True):
        assert writer.call(offer_event(offer, SAVE))[0] == 200
    assert sandbox_control.calls()["token"] == 1
    sandbox_control.revoke_tokens()  # as after a signing-key rotation at AIR MILES
    for reader in readers:
        _count(reader)
    for writer, offer in zip(writers, offers, strict=True):
        assert writer.call(offer_event(offer, SAVE))[0] == 200
    # The first environment refused asked for a new token; the others read it (strongly
    # consistent after their 401) or found it replaced already.
    assert sandbox_control.calls()["token"] <= 2
    assert refresher.outcomes().count("refreshed") == 2  # the first token, and its successor


def test_a_revocation_that_also_catches_the_newer_stored_token_is_renewed_past(
    refresher: InProcessRefresher,
    environments: Callable[..., list[Function]],
    deployed: Deployed,
    sandbox_control: SandboxControl,
):
    """An environment still holds the first token when the refresher has stored a second, and
    AIR MILES then revokes both: its request is refused with the first, then with the second
    (read from the store), and served with a third that the refresher fetches."""
    [reader] = environments(1)
    _count(reader)
    first = deployed.token_item()["tokenId"]["S"]
    assert refresher.invoke({"refusedTokenId": first})["result"]["outcome"] == "refreshed"
    second = deployed.token_item()["tokenId"]["S"]
    sandbox_control.revoke_tokens()  # the first, held in memory, and the second, stored
    _count(reader)
    assert deployed.token_item()["tokenId"]["S"] not in (first, second)
    assert sandbox_control.calls()["token"] == 3
    assert sandbox_control.calls()["count"] == 4  # 1, then refused twice and served


def test_a_refused_token_is_replaced_only_while_it_is_still_the_stored_one(
    refresher: InProcessRefresher,
    environments: Callable[..., list[Function]],
    deployed: Deployed,
    sandbox_control: SandboxControl,
):
    [reader] = environments(1)
    _count(reader)
    first = deployed.token_item()["tokenId"]["S"]
    assert refresher.invoke({"refusedTokenId": first})["result"]["outcome"] == "refreshed"
    second = deployed.token_item()["tokenId"]["S"]
    # A late ask about the first token (another environment's 401) changes nothing.
    assert refresher.invoke({"refusedTokenId": first})["result"]["outcome"] == "fresh"
    assert deployed.token_item()["tokenId"]["S"] == second != first
    assert sandbox_control.calls()["token"] == 2


# ---------------------------------------------------------------------------- failing


def test_with_the_refresher_down_each_environment_falls_back_once_counted(
    refresher: InProcessRefresher,
    environments: Callable[..., list[Function]],
    sandbox_control: SandboxControl,
    capsys: pytest.CaptureFixture[str],
):
    refresher.down = True  # the Invoke is accepted (asynchronous), the run fails
    burst = environments(3, AIRMILES_TOTAL_BUDGET="3")  # each waits 1.5 s
    capsys.readouterr()
    for _ in range(2):
        for environment in burst:
            _count(environment)
    out, _ = capsys.readouterr()
    # Each waited what it may, then fetched its own, used for the store's cool-down.
    assert [value for _, value in emitted(out, "TokenFallbackFetches")] == [1.0] * 3
    assert sandbox_control.calls()["token"] == 3


def test_kms_denied_to_a_function_is_a_store_failure_and_one_fallback(
    environments: Callable[..., list[Function]],
    sandbox_control: SandboxControl,
    capsys: pytest.CaptureFixture[str],
):
    [first] = environments(1)
    _count(first)
    [denied] = environments(1)
    kms = denied.module.service._token_client("kms")
    kms.meta.events.register_first(
        "before-call.kms.Decrypt", lambda **_: aws_faults.error_answer("AccessDeniedException")
    )
    capsys.readouterr()
    for _ in range(2):
        _count(denied)
    out, _ = capsys.readouterr()
    assert [value for _, value in emitted(out, "TokenStoreFailures")] == [1.0]
    assert [value for _, value in emitted(out, "TokenFallbackFetches")] == [1.0]
    assert sandbox_control.calls()["token"] == 2


def test_kms_denied_to_the_refresher_fails_its_run_and_frees_its_claim(
    refresher: InProcessRefresher,
    environments: Callable[..., list[Function]],
    deployed: Deployed,
    sandbox_control: SandboxControl,
    capsys: pytest.CaptureFixture[str],
):
    environment = refresher._idle[0]
    environment.store._clients("kms").meta.events.register_first(
        "before-call.kms.Encrypt", lambda **_: aws_faults.error_answer("AccessDeniedException")
    )
    [reader] = environments(1, AIRMILES_TOTAL_BUDGET="3")
    capsys.readouterr()
    _count(reader)  # the refresher failed: the function fell back
    refresher.api.wait()
    assert refresher.outcomes() == ["TokenStoreError"]
    assert "claimOwner" not in deployed.token_item()  # freed: the next run may claim at once
    out, _ = capsys.readouterr()
    assert [value for _, value in emitted(out, "TokenFallbackFetches")] == [1.0]
    assert sandbox_control.calls()["token"] == 2  # the refresher's, not stored; the fallback


def test_a_corrupt_item_is_reported_and_replaced_by_the_refresher(
    refresher: InProcessRefresher,
    environments: Callable[..., list[Function]],
    deployed: Deployed,
    sandbox_control: SandboxControl,
    capsys: pytest.CaptureFixture[str],
):
    boto3.client("dynamodb").put_item(
        TableName=deployed.refs["TokenTable"],
        Item={
            "pk": {"S": ITEM_KEY},
            "ciphertext": {"B": b"not a ciphertext"},
            "tokenId": {"S": "0123456789abcdef"},
            "issuedAt": {"N": str(time.time())},
            "expiresAt": {"N": str(time.time() + 86400)},
            "refreshAt": {"N": str(time.time() + 82800)},
        },
    )
    [reader] = environments(1)
    capsys.readouterr()
    _count(reader)
    assert refresher.outcomes() == ["refreshed"]  # asked with the refused id: replaced
    assert deployed.token_item()["tokenId"]["S"] != "0123456789abcdef"
    out, _ = capsys.readouterr()
    assert [value for _, value in emitted(out, "TokenStoreFailures")] == [1.0]
    assert emitted(out, "TokenFallbackFetches") == []
    assert sandbox_control.calls()["token"] == 1


@pytest.mark.parametrize("token_id", [{"S": ""}, {"N": "7"}], ids=["empty", "a number"])
def test_an_item_whose_token_id_is_no_token_id_is_replaced_by_the_refresher(
    refresher: InProcessRefresher,
    deployed: Deployed,
    sandbox_control: SandboxControl,
    token_id: dict[str, str],
):
    boto3.client("dynamodb").put_item(
        TableName=deployed.refs["TokenTable"],
        Item={"pk": {"S": ITEM_KEY}, "tokenId": token_id, "ciphertext": {"B": b"-"}},
    )
    assert refresher.invoke({})["result"]["outcome"] == "refreshed"
    assert len(deployed.token_item()["tokenId"]["S"]) == 16
    assert sandbox_control.calls()["token"] == 1


# ---------------------------------------------------------------------------- the refresher


def test_two_refreshers_at_once_fetch_one_token(
    refresher: InProcessRefresher,
    deployed: Deployed,
    sandbox_control: SandboxControl,
    atomic_writes: None,
):
    # Both read the item (no token), then both try to claim the refresh at the same moment.
    runs = [refresher._idle.pop(), refresher._environment()]
    both_read = threading.Barrier(2)
    for run in runs:
        original = run.store.claim

        def claim(*args: Any, _original: Any = original) -> bool:
            both_read.wait(10)
            return _original(*args)

        run.store.claim = claim
    context = _context(refresher)
    answers = _in_threads([functools.partial(lambda r: r.run({}, context()), r) for r in runs])
    assert sorted(a["outcome"] for a in answers) == ["claimed by another run", "refreshed"]
    assert sandbox_control.calls()["token"] == 1
    assert "claimOwner" not in deployed.token_item()


def test_the_refresher_replaces_a_token_ahead_of_its_expiry_and_not_before(
    refresher: InProcessRefresher, deployed: Deployed, sandbox_control: SandboxControl
):
    run, context = refresher._idle[0], _context(refresher)
    assert run.run({}, context())["outcome"] == "refreshed"
    item = deployed.token_item()
    issued, expires, refresh_at = (float(item[k]["N"]) for k in _TIMES)
    assert refresh_at == pytest.approx(expires - 3600, abs=0.01)  # an hour before a day's end
    assert refresh_at == pytest.approx(refresh_time(issued, expires), abs=0.01)
    assert refresh_time(0, 20) == 16  # a short life: its last fifth
    assert run.run({}, context(), wall=lambda: refresh_at - 1)["outcome"] == "fresh"
    assert run.run({}, context(), wall=lambda: refresh_at + 1)["outcome"] == "refreshed"
    assert float(deployed.token_item()["refreshAt"]["N"]) > refresh_at
    assert sandbox_control.calls()["token"] == 2


def test_the_store_never_holds_the_token_in_clear(
    environments: Callable[..., list[Function]], deployed: Deployed
):
    [reader] = environments(1)
    _count(reader)
    token = reader.module.service.client.tokens._held.token
    item = deployed.token_item()
    assert leaks.findings("the token", token)  # the leak check would see it ...
    assert leaks.findings("TokenTable", deployed.table_text("TokenTable")) == []  # ... it is not
    assert token.encode() not in item["ciphertext"]["B"]
    assert item["tokenId"]["S"] == token_id(token)


_TIMES = ("issuedAt", "expiresAt", "refreshAt")


def _context(refresher: InProcessRefresher) -> Callable[[], Any]:
    return lambda: lambda_context("TokenRefresherFunction", 256, refresher.timeout)
