"""The token's one writer, checked from outside as a partner would: bursts of requests through
the running local stack (`python -m local.stack`, eight environments per function at most),
the AIR MILES token requests counted at the sandbox. (It counts requests and reads statuses;
it asserts no time.)"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from local.sandbox.seed import CATALOGUE
from tests.support.fixtures import checked_stack
from tests.support.stack import RunningStack

pytestmark = pytest.mark.fleet  # run alone (the Makefile's `test`)

BURST = 32
MEMBERS = [f"800000{n:05d}" for n in range(110, 110 + BURST)]


@pytest.fixture(scope="module")
def eight_environments(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    extra = {"LOCAL_MAX_ENVIRONMENTS": "8"}
    with checked_stack(tmp_path_factory.mktemp("stack"), extra) as running:
        yield running


@pytest.fixture
def stack(eight_environments: RunningStack) -> RunningStack:
    eight_environments.sandbox_control.reset()
    return eight_environments


def _burst(stack: RunningStack) -> list[requests.Response]:
    """`BURST` requests at once, each a different member: half read a count, half save an
    offer (each its own)."""
    offers = [o.offer_id for o in CATALOGUE[:BURST]]

    def one(n: int) -> requests.Response:
        token = stack.token(MEMBERS[n])
        if n % 2:
            return stack.request("GET", "/v1/offers/states/count", token)
        body = {"states": [{"name": "SAVE", "value": "SAVED"}]}
        return stack.request("PUT", f"/v1/offers/{offers[n]}/states", token, json=body)

    with ThreadPoolExecutor(BURST) as pool:
        return list(pool.map(one, range(BURST)))


def _failures(stack: RunningStack) -> list[str]:
    """The stack's log lines of the requests that failed, to say why."""
    said = ('"request failed"', "fetches its own")
    return [line for line in stack.output if any(text in line for text in said)]


def _no_bare_500(answers: list[requests.Response]) -> None:
    """Every 5xx is ours, with a code and a message: never the gateway's bare
    `{"message": "Internal Server Error"}` of a function that crashed or ran out of time."""
    for answer in answers:
        if answer.status_code >= 500:
            error = answer.json().get("error", {})
            assert error.get("code") and error.get("message"), (answer.status_code, answer.text)


def test_a_burst_with_no_token_stored_and_a_slow_endpoint_asks_for_at_most_two(
    stack: RunningStack,
):
    control = stack.sandbox_control
    stack.table("TokenTable").delete_item(Key={"pk": "airmiles-token"})  # none stored
    control.fault("token", "delay", delayMs=3000)
    asked_before = control.calls()["token"]

    answers = _burst(stack)

    statuses = Counter(a.status_code for a in answers)
    assert control.calls()["token"] - asked_before <= 2, statuses
    _no_bare_500(answers)
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    assert ok >= 0.9 * BURST, (statuses, _failures(stack))


def test_after_a_revocation_with_the_endpoint_refusing_twice_no_answer_is_a_bare_500(
    stack: RunningStack,
):
    control = stack.sandbox_control
    asked_before = control.calls()["token"]
    control.revoke_tokens()  # the stored token now answers 401
    control.fault("token", "status", status=429, count=2)

    answers = _burst(stack)
    answers += _burst(stack)  # once the endpoint gives a token again

    statuses = Counter(a.status_code for a in answers)
    _no_bare_500(answers)
    assert set(statuses) <= {200, 429, 503, 504}, statuses
    assert statuses[200] >= BURST, statuses  # the second burst, at least, is served
    assert control.calls()["token"] - asked_before <= 3, statuses
