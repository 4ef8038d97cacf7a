"""No amplification: while the token endpoint fails or refuses the credentials, or AIR MILES
refuses every token, more traffic does not mean more token requests (counted at the
sandbox)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from offer_state.auth import TokenProvider
from offer_state.client import Collector, OfferStateClient
from offer_state.config import ClientCredentials, ClientSettings
from offer_state.errors import UpstreamAuthError, UpstreamError, UpstreamUnavailableError
from tests.support.clock import FakeClock
from tests.support.sandbox_control import SandboxControl

COLLECTOR = "80000000110"
REQUESTS = 5


@pytest.fixture
def clocked(
    settings: ClientSettings, credentials: ClientCredentials
) -> Iterator[tuple[OfferStateClient, FakeClock]]:
    """A client whose token cache runs on a clock the test moves."""
    clock = FakeClock()
    with OfferStateClient(settings, credentials) as client:
        client.tokens = TokenProvider(settings, client.transport, credentials, clock=clock)
        yield client, clock


def _count_failing(client: OfferStateClient, error: type[Exception]) -> None:
    for _ in range(REQUESTS):
        with pytest.raises(error):
            client.count(Collector(COLLECTOR))


def test_after_the_token_endpoint_failed_no_token_is_asked_for_during_the_cooldown(
    client: OfferStateClient, sandbox_control: SandboxControl
):
    sandbox_control.fault("token", "status", status=503, retryAfter=0)
    _count_failing(client, UpstreamUnavailableError)
    # The first request's attempts only; the others fail at once with the same error.
    assert sandbox_control.calls()["token"] == client.settings.max_retries + 1
    assert sandbox_control.calls()["count"] == 0


def test_refused_credentials_are_not_offered_again_during_the_cooldown(
    client: OfferStateClient, sandbox_control: SandboxControl
):
    sandbox_control.fault("token", "status", status=401)
    _count_failing(client, UpstreamAuthError)
    assert sandbox_control.calls()["token"] == 2  # refused, re-read, refused: then no more


def test_a_token_is_asked_for_again_once_the_cooldown_is_over(
    clocked: tuple[OfferStateClient, FakeClock], sandbox_control: SandboxControl
):
    client, clock = clocked
    sandbox_control.fault("token", "status", status=500, count=1)
    with pytest.raises(UpstreamError):
        client.count(Collector(COLLECTOR))
    clock.advance(client.settings.token_failure_cooldown - 0.1)
    with pytest.raises(UpstreamError):
        client.count(Collector(COLLECTOR))
    assert sandbox_control.calls()["token"] == 1
    clock.advance(0.2)
    assert client.count(Collector(COLLECTOR)) >= 0
    assert sandbox_control.calls()["token"] == 2


def test_a_persistent_401_renews_the_token_twice_then_not_during_the_cooldown(
    client: OfferStateClient, sandbox_control: SandboxControl
):
    sandbox_control.fault("count", "status", status=401)
    _count_failing(client, UpstreamAuthError)
    # The first request: a token, refused, a new one, refused, another, refused too. The
    # others: the token they have, refused, and no renewal.
    assert sandbox_control.calls()["token"] == 3
    assert sandbox_control.calls()["count"] == REQUESTS + 2


def test_after_the_renewal_cooldown_a_refused_token_is_renewed_again(
    clocked: tuple[OfferStateClient, FakeClock], sandbox_control: SandboxControl
):
    client, clock = clocked
    # Two requests: the first renews twice (three 401s), the second does not (one).
    sandbox_control.fault("count", "status", status=401, count=5)
    for _ in range(2):
        with pytest.raises(UpstreamAuthError):
            client.count(Collector(COLLECTOR))
    assert sandbox_control.calls()["token"] == 3
    clock.advance(client.settings.token_refused_cooldown + 0.1)
    assert client.count(Collector(COLLECTOR)) >= 0  # refused once more, renewed, served
    assert sandbox_control.calls()["token"] == 4
