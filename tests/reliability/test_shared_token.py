"""The deployment's one AIR MILES token (offer_state.auth over offer_state.token_store), shared
by its execution environments, under every fault the design names: the store unreachable,
throttled or holding a corrupt item; a lease holder that never finishes; environments racing a
refresh; the token endpoint failing during a refresh; a 401 for a token another environment
already replaced; clocks that disagree. Each is answered, with at most one extra token per
incident, counted where AIR MILES counts them: at the sandbox.

The environments, their clocks and the races between them are tests/support/shared_tokens.py's:
time is the test's, and a race is a barrier or a hook at a given store call, never a sleep.
"""

from __future__ import annotations

import threading

import pytest

from offer_state.token_store import ITEM_KEY, TokenStoreNoTime, token_id
from tests.support import aws_faults
from tests.support.inprocess import Deployed
from tests.support.sandbox_control import SandboxControl
from tests.support.shared_tokens import (
    LIFETIME,
    REFRESH_FROM,
    SETTINGS,
    USABLE_FOR,
    Deployment,
    Environment,
)

LEASE = SETTINGS["total_budget"] + 2.0  # offer_state.auth: the budget and its slack


@pytest.fixture
def deployment(deployed: Deployed, sandbox_control: SandboxControl) -> Deployment:
    return Deployment(sandbox_control, deployed)


def _held(environment: Environment) -> str:
    """The token the environment would send now (without asking anything of anyone)."""
    held = environment.tokens._held
    assert held is not None
    return held.token


def _shared(deployment: Deployment) -> str:
    """The id of the token the store holds."""
    return deployment.item()["tokenId"]["S"]


# ---------------------------------------------------------------------------- sharing


def test_every_environment_uses_the_one_token_for_its_life(deployment: Deployment):
    # Eight environments, a request each every 50 s, for three token lifetimes.
    environments = [deployment.environment(f"env{n}") for n in range(8)]
    for second in range(0, 3 * LIFETIME + 1, 50):
        deployment.world.at(second)
        for environment in environments:
            environment.count()
    # The first token, then one at the first request in each token's refresh window (from
    # 870 s after it was issued): at 900, 1800 and 2700 s. Eight environments with a token of
    # their own each would have asked for one at their start and then every 970 s: 32.
    assert deployment.token_requests() == 4
    assert {_held(e) for e in environments} == {_held(environments[0])}
    assert deployment.probe.made("publish") == [True] * 4


def test_a_new_environment_takes_up_the_token_without_asking_for_one(deployment: Deployment):
    first = deployment.environment("first")
    first.count()
    later = deployment.environment("later")
    deployment.world.advance(600)
    later.count()
    assert deployment.token_requests() == 1
    assert _held(later) == _held(first)
    assert deployment.probe.made("decrypt", "later") == [_held(first)]


def test_the_store_never_holds_the_token_in_clear(deployment: Deployment, deployed: Deployed):
    from tests.support import leaks

    environment = deployment.environment("env")
    environment.count()
    token = _held(environment)
    item = deployment.item()
    assert leaks.findings("the token", token)  # the leak check would see it ...
    assert leaks.findings("TokenTable", deployed.table_text("TokenTable")) == []  # ... it is not
    assert token.encode() not in item["ciphertext"]["B"]
    assert item["tokenId"]["S"] == token_id(token)


# ---------------------------------------------------------------------------- the store failing


@pytest.mark.parametrize(
    ("service", "operation", "fault"),
    [
        ("dynamodb", "GetItem", "unreachable"),
        ("dynamodb", "GetItem", "throttled"),
        ("dynamodb", "UpdateItem", "unreachable"),
        ("dynamodb", "UpdateItem", "throttled"),
        ("kms", "Encrypt", "unreachable"),
        ("kms", "Decrypt", "unreachable"),
        ("kms", "Decrypt", "throttled"),
    ],
)
def test_a_store_that_fails_costs_an_environment_one_token_of_its_own_and_no_more(
    deployment: Deployment, service: str, operation: str, fault: str
):
    environments = [deployment.environment(f"env{n}") for n in range(4)]
    for environment in environments:
        client = environment.dynamodb if service == "dynamodb" else environment.kms
        getattr(aws_faults, fault)(client, operation)
    for _ in range(5):
        for environment in environments:
            deployment.world.advance(1)
            assert environment.count() >= 0
    # Each environment asked once, said once that the store failed, and used that token for
    # everything after. (Decrypt: the first shared its token, which the others cannot read.)
    assert deployment.token_requests() == len(environments)
    for environment in environments:
        assert environment.tokens.fetches == 1
        failures = environment.recorder.store_failures()
        if operation == "Decrypt" and environment is environments[0]:
            assert failures == []
            continue
        [(_, failed, reason)] = failures
        assert failed == operation
        assert reason in ("EndpointConnectionError", *aws_faults.THROTTLED.values())


def test_a_holder_that_cannot_encrypt_its_token_gives_the_lease_up(deployment: Deployment):
    broken = deployment.environment("broken")
    aws_faults.unreachable(broken.kms, "Encrypt")
    broken.count()  # fetched under the lease, could not write it: its own, and the lease freed
    assert deployment.probe.made("release", "broken") == [True]
    assert "leaseOwner" not in deployment.item()
    healthy = deployment.environment("healthy")
    healthy.count()
    # It took the lease at once (no wait for the broken one's to run out) and shared a token.
    assert deployment.world.now == 0
    assert deployment.probe.made("take_lease", "healthy") == [True]
    assert deployment.token_requests() == 2
    assert _shared(deployment) == token_id(_held(healthy))


def test_no_time_left_for_the_store_is_not_the_store_failing(deployment: Deployment):
    hurried = deployment.environment("hurried")

    def no_time() -> None:  # what offer_state.deadlines refuses an AWS attempt with
        raise TokenStoreNoTime("GetItem", "AwsTimeLimitReached")

    deployment.probe.before("hurried", "read", no_time)
    hurried.count()  # a token of its own, the store not reported nor left alone
    assert hurried.recorder.store_failures() == []
    deployment.world.at(USABLE_FOR + 1)
    hurried.count()  # its own used up: the store at once (no cool-down), then shared
    assert deployment.token_requests() == 2
    assert _shared(deployment) == token_id(_held(hurried))


def test_without_the_store_no_environment_is_down_and_each_asks_once(deployment: Deployment):
    environments = [deployment.environment(f"env{n}") for n in range(3)]
    for environment in environments:
        aws_faults.unreachable(environment.dynamodb, "GetItem")
        aws_faults.unreachable(environment.dynamodb, "UpdateItem")
    for _ in range(10):
        deployment.world.advance(10)
        for environment in environments:
            environment.count()
    assert deployment.token_requests() == 3
    # Not a store call per request either: one, then none during the cool-down.
    assert len(deployment.probe.made("read")) == 3


def test_the_store_is_used_again_once_its_cooldown_is_over(deployment: Deployment):
    failing = deployment.environment("failing")
    repaired = aws_faults.unreachable(failing.dynamodb, "GetItem")
    failing.count()  # a token of its own, usable for 970 s
    healthy = deployment.environment("healthy")
    healthy.count()  # the shared one
    repaired()
    deployment.world.at(REFRESH_FROM + 30)
    healthy.count()  # refreshes the shared token in its window
    deployment.world.at(USABLE_FOR + 1)
    failing.count()  # its own token used up: it takes the shared one, not a new one
    assert failing.tokens.fetches == 1
    assert deployment.token_requests() == 3
    assert _held(failing) == _held(healthy)


@pytest.mark.parametrize(
    ("broken", "reported"),
    [
        (
            lambda d: {
                "ciphertext": {"B": b"not a ciphertext"},
                "tokenId": {"S": "0123456789abcdef"},
                "issuedAt": {"N": str(d.world.epoch)},
                "expiresAt": {"N": str(d.world.epoch + LIFETIME)},
            },
            "corrupt item: InvalidCiphertextException",
        ),
        (
            lambda d: {
                "ciphertext": {"B": d.encrypt("some other token")},
                "tokenId": {"S": "0123456789abcdef"},
                "issuedAt": {"N": str(d.world.epoch)},
                "expiresAt": {"N": str(d.world.epoch + LIFETIME)},
            },
            "corrupt item: not the token of its tokenId",
        ),
        (
            lambda d: {"tokenId": {"S": "0123456789abcdef"}, "expiresAt": {"N": "1"}},
            "corrupt item: a token field is missing",
        ),
        (
            lambda d: {
                "ciphertext": {"B": b"x"},
                "tokenId": {"N": "7"},
                "issuedAt": {"S": "yesterday"},
                "expiresAt": {"S": "tomorrow"},
                "leaseOwner": {"N": "1"},
                "leaseUntil": {"S": "soon"},
            },
            "corrupt item: a token field has the wrong type",
        ),
        (
            lambda d: {
                "ciphertext": {"B": b"x"},
                "tokenId": {"S": "0123456789abcdef"},
                "issuedAt": {"N": str(d.world.epoch + LIFETIME)},
                "expiresAt": {"N": str(d.world.epoch)},
            },
            "corrupt item: it expires before it was issued",
        ),
        (
            # DynamoDB stores an empty string: the conditions must read it as parse does.
            lambda d: {
                "ciphertext": {"B": b"x"},
                "tokenId": {"S": ""},
                "issuedAt": {"N": str(d.world.epoch)},
                "expiresAt": {"N": str(d.world.epoch + LIFETIME)},
            },
            "corrupt item: a token field has the wrong type",
        ),
    ],
    ids=[
        "not a ciphertext",
        "another token",
        "a field missing",
        "wrong types",
        "backwards",
        "an empty tokenId",
    ],
)
def test_a_corrupt_item_is_reported_and_replaced_by_the_next_token(
    deployment: Deployment, broken, reported: str
):
    deployment.write_item(**broken(deployment))
    first, second = deployment.environment("first"), deployment.environment("second")
    first.count()
    second.count()
    # One token, fetched under the lease, replaces the item: the second environment takes it.
    assert deployment.token_requests() == 1
    assert first.recorder.store_failures() == [("store failed", _failed_at(reported), reported)]
    assert second.recorder.store_failures() == []
    assert _shared(deployment) == token_id(_held(first)) == token_id(_held(second))


def _failed_at(reported: str) -> str:
    return "Decrypt" if "Ciphertext" in reported or "its tokenId" in reported else "GetItem"


# ---------------------------------------------------------------------------- the lease


def _crashed_holder(deployment: Deployment) -> None:
    """A lease just taken by an environment that then died: no token, a lease of 4 s."""
    deployment.write_item(
        leaseOwner={"S": "crashed"},
        leaseUntil={"N": str(deployment.world.epoch + deployment.world.now + LEASE)},
    )


@pytest.mark.parametrize(
    "owner",
    [None, {"S": ""}, {"N": "1"}],
    ids=["no owner", "an empty owner", "an owner not a string"],
)
def test_a_lease_without_a_readable_owner_is_no_lease(deployment: Deployment, owner):
    # A lease half there (its time still to come): as parse reads it, so the condition.
    lease = {"leaseUntil": {"N": str(deployment.world.epoch + deployment.world.now + LEASE)}}
    if owner is not None:
        lease["leaseOwner"] = owner
    deployment.write_item(**lease)
    first = deployment.environment("first")
    first.count()
    # Taken at once, not waited on: no time passed, one token, now the store's.
    assert deployment.world.now == 0
    assert deployment.probe.made("take_lease", "first") == [True]
    assert deployment.token_requests() == 1
    assert _shared(deployment) == token_id(_held(first))


def test_a_holder_that_never_finishes_is_replaced_after_the_wait(deployment: Deployment):
    _crashed_holder(deployment)
    waiting = deployment.environment("waiting")
    waiting.count()
    # It waited `token_wait` for the holder, took its lease over, and fetched the token.
    assert SETTINGS["token_wait"] <= deployment.world.now < LEASE
    assert deployment.probe.made("take_lease", "waiting") == [True]
    assert ("fallback",) not in waiting.recorder.events
    later = deployment.environment("later")
    later.count()
    assert deployment.token_requests() == 1


def test_environments_waiting_on_a_dead_holder_replace_it_once(deployment: Deployment):
    _crashed_holder(deployment)
    environments = [deployment.environment(f"env{n}") for n in range(4)]
    start = threading.Barrier(len(environments))
    answers = [e.in_thread(start) for e in environments]
    assert all(answer() >= 0 for answer in answers)
    # One of them took the dead holder's lease over; the others took its token.
    assert deployment.token_requests() == 1
    assert deployment.probe.made("take_lease").count(True) == 1
    assert {_held(e) for e in environments} == {_held(environments[0])}


def test_a_cold_burst_asks_for_one_token(deployment: Deployment):
    environments = [deployment.environment(f"env{n}") for n in range(6)]
    deployment.probe.race("take_lease", len(environments))  # all try the lease at once
    answers = [e.in_thread() for e in environments]
    assert all(answer() >= 0 for answer in answers)
    assert deployment.token_requests() == 1
    assert deployment.probe.made("take_lease").count(True) == 1
    assert not any(("fallback",) in e.recorder.events for e in environments)


def test_a_waiter_that_runs_out_of_time_fetches_its_own_and_offers_it(deployment: Deployment):
    # A holder that renews its lease whenever the waiter would take it over, and never
    # delivers: when the waiter has only what it keeps for its own call left, it fetches a
    # token of its own, which the store then shares.
    def renewed() -> None:
        _crashed_holder(deployment)
        deployment.probe.before("waiting", "take_lease", renewed)

    renewed()
    waiting = deployment.environment("waiting")
    waiting.count()
    assert ("fallback",) in waiting.recorder.events
    assert deployment.probe.made("offer", "waiting") == [True]
    deployment.environment("later").count()
    assert deployment.token_requests() == 1


# ---------------------------------------------------------------------------- refreshing


def _sharing(deployment: Deployment, *names: str) -> list[Environment]:
    """Environments that all hold the first token, issued now (the store calls forgotten)."""
    environments = [deployment.environment(name) for name in names]
    for environment in environments:
        environment.count()
    assert deployment.token_requests() == 1
    deployment.probe.forget()
    return environments


def test_two_environments_racing_a_refresh_fetch_one_token(deployment: Deployment):
    a, b = _sharing(deployment, "a", "b")
    first = _held(a)
    deployment.world.at(REFRESH_FROM + 10)
    deployment.probe.race("take_lease", 2)
    answers = [a.in_thread(), b.in_thread()]
    assert all(answer() >= 0 for answer in answers)
    assert deployment.token_requests() == 2
    assert sorted(deployment.probe.made("take_lease")) == [False, True]
    # The loser keeps the first token meanwhile (valid for 90 s more), then takes the new one.
    held = {_held(a), _held(b)}
    assert first in held
    assert len(held) == 2
    loser = a if _held(a) == first else b
    loser.clock.advance(1)
    loser.count()
    assert _held(loser) == _held(a) == _held(b) != first
    assert deployment.token_requests() == 2


def test_an_environment_that_read_before_a_refresh_does_not_refresh_again(
    deployment: Deployment,
):
    # b refreshes between a's read of the store and a's try for the lease.
    a, b = _sharing(deployment, "a", "b")
    deployment.world.at(REFRESH_FROM + 10)
    deployment.probe.before("a", "take_lease", b.count)
    a.count()
    assert deployment.token_requests() == 2
    assert deployment.probe.made("take_lease", "a") == [False]


def test_while_the_token_endpoint_fails_a_refresh_the_others_keep_the_valid_token(
    deployment: Deployment,
):
    a, b, c = _sharing(deployment, "a", "b", "c")
    first = _held(a)
    deployment.world.at(REFRESH_FROM + 10)
    deployment.sandbox.fault("token", "status", status=503, retryAfter=0)
    for environment in (a, b, c):
        assert environment.count() >= 0  # a's refresh fails; a and the others keep the token
    assert {_held(a), _held(b), _held(c)} == {first}
    # a's attempts only: the lease it holds keeps the others from asking meanwhile.
    asked = 1 + 1 + SETTINGS.get("max_retries", 2)
    assert deployment.token_requests() == asked
    assert deployment.tokens_issued() == 1
    deployment.world.advance(LEASE + 1)
    for environment in (b, c):
        assert environment.count() >= 0  # the lease expired: b tries again, c keeps the token
    assert deployment.token_requests() == 2 * asked - 1  # (still failing: b's attempts)
    deployment.sandbox.clear_faults()
    deployment.world.advance(LEASE + 1)
    for environment in (c, a, b):
        environment.count()
    assert deployment.tokens_issued() == 2
    assert {_held(a), _held(b), _held(c)} == {_held(c)} != {first}


def test_a_401_for_a_token_another_environment_replaced_takes_up_the_new_one(
    deployment: Deployment,
):
    a, b = _sharing(deployment, "a", "b")
    first = _held(a)
    # AIR MILES refuses the first token to b: b removes it (compare-and-swap) and refreshes.
    deployment.sandbox.fault("count", "status", status=401, count=1)
    b.count()
    assert deployment.probe.made("invalidate", "b") == [True]
    assert deployment.token_requests() == 2
    # Then to a, which still holds it: the store has another already, which a takes up.
    deployment.sandbox.fault("count", "status", status=401, count=1)
    a.count()
    assert deployment.probe.made("invalidate", "a") == [False]
    assert a.tokens.fetches == 1  # its first token only
    assert deployment.token_requests() == 2
    assert _held(a) == _held(b) != first


def test_a_token_refused_everywhere_at_once_is_renewed_once(deployment: Deployment):
    environments = _sharing(deployment, "a", "b", "c")
    # Each gets its 401 before any of them has done anything about it.
    deployment.sandbox.fault("count", "status", status=401, count=len(environments))
    deployment.probe.race("invalidate", len(environments))
    answers = [e.in_thread() for e in environments]
    assert all(answer() >= 0 for answer in answers)
    assert sorted(deployment.probe.made("invalidate")) == [False, False, True]
    assert deployment.token_requests() == 2
    assert len({_held(e) for e in environments}) == 1


# ---------------------------------------------------------------------------- clocks


def test_a_clock_ahead_refreshes_early_but_once_per_lifetime(deployment: Deployment):
    on_time = deployment.environment("on time")
    ahead = deployment.environment("ahead", skew=20.0)  # inside the 30 s margin
    for second in range(0, 3 * LIFETIME + 1, 50):
        deployment.world.at(second)
        on_time.count()
        ahead.count()
    # As without skew (test_every_environment_uses_the_one_token_for_its_life): 4.
    assert deployment.token_requests() == 4


def test_a_clock_behind_past_the_expiry_costs_one_401_and_one_refresh(deployment: Deployment):
    on_time = deployment.environment("on time")
    on_time.count()
    behind = deployment.environment("behind", skew=-200.0)  # beyond margin and window
    behind.count()
    # The token expired at 1000 s; by its clock `behind` would use it until 1170 s. AIR MILES
    # refuses it: it is removed, and one new token fetched.
    deployment.world.at(LIFETIME + 50)
    deployment.sandbox.fault("count", "status", status=401, count=1)
    behind.count()
    assert deployment.token_requests() == 2
    assert deployment.probe.made("invalidate", "behind") == [True]
    on_time.count()  # takes it up: its own was used up
    assert deployment.token_requests() == 2


def test_a_skew_longer_than_a_lease_costs_at_most_one_extra_token(deployment: Deployment):
    behind, on_time = _sharing(deployment, "behind", "on time")
    behind.clock.skew = -10.0  # its lease ends, by the other's clock, 6 s before it is taken
    deployment.world.at(REFRESH_FROM + 30)
    # While `behind` holds its lease (about to fetch), `on time` finds it expired and refreshes.
    deployment.probe.after("behind", "take_lease", on_time.count)
    behind.count()
    assert deployment.token_requests() == 3  # one extra
    assert deployment.probe.made("publish") == [True, False]  # the late holder's: refused
    assert on_time.count() >= 0 and behind.count() >= 0
    assert deployment.token_requests() == 3


def test_the_item_is_the_one_item_of_its_key(deployment: Deployment):
    deployment.environment("env").count()
    assert deployment.item()["pk"] == {"S": ITEM_KEY}
