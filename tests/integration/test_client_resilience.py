"""Token caching, expiry, 401 recovery, every sandbox fault mode, and concurrency."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from requests.adapters import HTTPAdapter

from offer_state.auth import TokenProvider
from offer_state.client import Collector, OfferStateClient
from offer_state.config import ClientCredentials, ClientSettings
from offer_state.errors import (
    OutcomeUnknownError,
    RateLimitedError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
    ValidationError,
)
from offer_state.transport import Transport
from tests.support.clock import FakeClock
from tests.support.sandbox_control import SandboxControl
from tests.support.stack import free_ports

COLLECTOR = "80000000110"
SLACK = 0.5  # scheduling noise on a loaded 2-core machine


def _save(offer: str) -> list[dict]:
    return [{"offerId": offer, "states": [{"name": "SAVE", "value": "SAVED"}]}]


def test_one_token_serves_a_hundred_calls(
    client: OfferStateClient, sandbox_control: SandboxControl
):
    for _ in range(100):
        client.count(Collector(COLLECTOR))
    assert sandbox_control.calls()["token"] == 1
    assert sandbox_control.calls()["count"] == 100
    assert client.tokens is not None and client.tokens.fetches == 1


def test_an_expiring_token_is_replaced(
    client: OfferStateClient,
    settings: ClientSettings,
    credentials: ClientCredentials,
    sandbox_control: SandboxControl,
):
    # 2 s lifetime, margin min(1 s, half the lifetime): reusable for 1 s only, by the clock
    # the token cache is given.
    clock = FakeClock()
    client.tokens = TokenProvider(settings, client.transport, credentials, clock=clock)
    sandbox_control.config(tokenTtl=2)
    client.count(Collector(COLLECTOR))
    clock.advance(0.9)
    client.count(Collector(COLLECTOR))
    assert sandbox_control.calls()["token"] == 1
    clock.advance(0.2)
    client.count(Collector(COLLECTOR))
    assert sandbox_control.calls()["token"] == 2


def test_a_retry_after_the_budget_affords_is_slept_before_the_retry(
    settings: ClientSettings, credentials: ClientCredentials, sandbox_control: SandboxControl
):
    clock = FakeClock()
    transport = Transport(settings, sleep=clock.sleep, clock=clock)
    tokens = TokenProvider(settings, transport, credentials)
    sandbox_control.fault("token", "status", status=503, retryAfter=1, count=1)
    assert tokens.token(transport.deadline())
    assert clock.slept == [1.0]
    assert sandbox_control.calls()["token"] == 2


def test_sleeping_out_a_retry_after_spends_the_budget(
    settings: ClientSettings, credentials: ClientCredentials, sandbox_control: SandboxControl
):
    assert settings.total_budget == 2  # after a first 1 s wait, a second no longer fits
    clock = FakeClock()
    transport = Transport(settings, sleep=clock.sleep, clock=clock)
    tokens = TokenProvider(settings, transport, credentials)
    sandbox_control.fault("token", "status", status=503, retryAfter=1)
    with pytest.raises(RateLimitedError) as caught:
        tokens.token(transport.deadline())
    assert caught.value.retry_after == 1
    assert clock.slept == [1.0]
    assert sandbox_control.calls()["token"] == 2


def test_a_401_drops_the_token_and_retries_once(
    client: OfferStateClient, sandbox_control: SandboxControl
):
    client.count(Collector(COLLECTOR))
    sandbox_control.fault("get", "status", status=401, count=1)
    assert client.get(Collector(COLLECTOR), [sandbox_control.untouched_offers(1)[0]]) == []
    assert sandbox_control.calls()["token"] == 2
    assert sandbox_control.calls()["get"] == 2


def test_a_persistent_401_is_an_auth_error_after_two_renewals(
    client: OfferStateClient, sandbox_control: SandboxControl
):
    sandbox_control.fault("count", "status", status=401)
    with pytest.raises(UpstreamAuthError) as caught:
        client.count(Collector(COLLECTOR))
    assert caught.value.status == 502
    assert sandbox_control.calls()["count"] == 3
    assert sandbox_control.calls()["token"] == 3


@pytest.mark.parametrize("status", [429, 502, 503, 504])  # 429: a Retry-After of 0 waited out
def test_a_transient_status_is_retried(
    client: OfferStateClient, sandbox_control: SandboxControl, status
):
    sandbox_control.fault("count", "status", status=status, count=1, retryAfter=0)
    assert client.count(Collector(COLLECTOR)) >= 0
    assert sandbox_control.calls()["count"] == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [(502, UpstreamError), (503, UpstreamUnavailableError), (504, UpstreamTimeoutError)],
)
def test_a_persistent_transient_status_stops_after_the_retry_count(
    client: OfferStateClient, sandbox_control: SandboxControl, status, error
):
    sandbox_control.fault("find", "status", status=status, retryAfter=0)
    started = time.monotonic()
    with pytest.raises(error) as caught:
        client.find(Collector(COLLECTOR))
    assert caught.value.upstream_status == status
    assert sandbox_control.calls()["find"] == client.settings.max_retries + 1
    assert time.monotonic() - started < client.settings.total_budget + SLACK


@pytest.mark.parametrize(("status", "error"), [(500, UpstreamError), (400, ValidationError)])
def test_a_non_transient_status_is_not_retried(
    client: OfferStateClient, sandbox_control: SandboxControl, status, error
):
    sandbox_control.fault("get", "status", status=status)
    with pytest.raises(error) as caught:
        client.get(Collector(COLLECTOR), [sandbox_control.untouched_offers(1)[0]])
    assert caught.value.upstream_status == status
    assert sandbox_control.calls()["get"] == 1


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_beyond_the_budget_fails_fast_as_rate_limited(
    client: OfferStateClient, sandbox_control: SandboxControl, status
):
    sandbox_control.fault("count", "status", status=status, retryAfter=30)
    started = time.monotonic()
    with pytest.raises(RateLimitedError) as caught:
        client.count(Collector(COLLECTOR))
    # Fails before the budget is spent: a wait for the Retry-After (or for what is left of the
    # budget) would end past it.
    assert time.monotonic() - started < client.settings.total_budget
    assert caught.value.status == 429
    assert caught.value.retry_after == 30
    assert sandbox_control.calls()["count"] == 1


def test_a_delay_inside_the_read_timeout_is_just_slow(client, sandbox_control: SandboxControl):
    sandbox_control.fault("get", "delay", delayMs=200)
    assert client.get(Collector(COLLECTOR), [sandbox_control.untouched_offers(1)[0]]) == []
    assert sandbox_control.calls()["get"] == 1


@pytest.mark.parametrize("mode", ["delay", "timeout"])
def test_no_answer_in_time_is_an_upstream_timeout_inside_the_budget(
    client: OfferStateClient, sandbox_control: SandboxControl, mode
):
    sandbox_control.fault("find", mode, delayMs=5000)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeoutError) as caught:
        client.find(Collector(COLLECTOR))
    elapsed = time.monotonic() - started
    assert caught.value.status == 504
    assert elapsed < client.settings.total_budget + SLACK
    # 0.5 s read timeout per attempt, 2 retries: three attempts fit in the 2 s budget.
    assert sandbox_control.calls()["find"] == client.settings.max_retries + 1


def test_a_malformed_answer_is_an_upstream_error_not_a_crash(
    client, sandbox_control: SandboxControl
):
    sandbox_control.fault("find", "malformed")
    with pytest.raises(UpstreamError) as caught:
        client.find(Collector(COLLECTOR))
    assert "not JSON" in caught.value.message
    assert caught.value.upstream_status == 200
    assert sandbox_control.calls()["find"] == 1


def test_connection_resets_are_retried_then_unavailable(client, sandbox_control: SandboxControl):
    sandbox_control.fault("count", "reset")
    with pytest.raises(UpstreamUnavailableError) as caught:
        client.count(Collector(COLLECTOR))
    assert caught.value.status == 502
    assert sandbox_control.calls()["count"] == client.settings.max_retries + 1


@pytest.mark.parametrize("applied", [True, False])
def test_a_reset_after_a_put_was_sent_is_not_sent_again_and_its_outcome_is_unknown(
    client, sandbox_control: SandboxControl, applied: bool
):
    offer = sandbox_control.untouched_offers(1)[0]
    sandbox_control.fault("put", "reset", count=1, applied=applied)
    with pytest.raises(OutcomeUnknownError) as caught:
        client.put(Collector(COLLECTOR), _save(offer))
    assert (caught.value.status, caught.value.code) == (502, "OUTCOME_UNKNOWN")
    assert "may or may not have been applied" in caught.value.message
    assert sandbox_control.calls()["put"] == 1
    assert (offer in sandbox_control.states(COLLECTOR)) is applied


def test_nothing_listening_is_unavailable(settings: ClientSettings, credentials, sandbox_control):
    (port,) = free_ports(1)  # free a moment ago
    dead = settings.model_copy(update={"token_url": f"http://127.0.0.1:{port}/oauth/token"})
    with OfferStateClient(dead, credentials) as client, pytest.raises(UpstreamUnavailableError):
        client.count(Collector(COLLECTOR))


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"mode": "status", "status": 500}, UpstreamError),
        ({"mode": "status", "status": 503, "retryAfter": 0}, UpstreamUnavailableError),
        ({"mode": "status", "status": 429, "retryAfter": 30}, RateLimitedError),
        ({"mode": "timeout"}, UpstreamTimeoutError),
        ({"mode": "malformed"}, UpstreamError),
        ({"mode": "reset"}, UpstreamUnavailableError),
    ],
)
def test_token_endpoint_faults_surface_as_their_error(
    client: OfferStateClient, sandbox_control: SandboxControl, fault, error
):
    sandbox_control.fault("token", **fault)
    started = time.monotonic()
    with pytest.raises(error):
        client.count(Collector(COLLECTOR))
    assert time.monotonic() - started < client.settings.total_budget + SLACK
    assert sandbox_control.calls()["count"] == 0


def test_a_token_endpoint_blip_is_retried(
    client: OfferStateClient, sandbox_control: SandboxControl
):
    sandbox_control.fault("token", "status", status=503, count=1, retryAfter=0)
    assert client.count(Collector(COLLECTOR)) >= 0
    assert sandbox_control.calls()["token"] == 2


def test_eight_threads_share_one_token_and_lose_no_update(
    settings: ClientSettings, credentials: ClientCredentials, sandbox_control: SandboxControl
):
    offers = sandbox_control.untouched_offers(40)
    batches = [offers[i::8] for i in range(8)]
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    with OfferStateClient(settings, credentials) as client:

        def work(batch: list[str]) -> None:
            try:
                start.wait()
                for offer in batch:
                    client.put(Collector(COLLECTOR), _save(offer))
                    client.get(Collector(COLLECTOR), [offer])
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(b,)) for b in batches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert errors == []
    assert sandbox_control.calls()["token"] == 1
    assert sandbox_control.calls()["put"] == 40
    stored = sandbox_control.states(COLLECTOR)
    assert all(stored[o] == {"SAVE": "SAVED"} for o in offers)


def test_a_put_answered_200_with_a_malformed_body_is_not_reported_as_applied(
    client: OfferStateClient, sandbox_control: SandboxControl
):
    sandbox_control.fault("put", "malformed")
    with pytest.raises(OutcomeUnknownError) as caught:
        client.put(Collector(COLLECTOR), _save(sandbox_control.untouched_offers(1)[0]))
    assert caught.value.upstream_status == 200
    assert sandbox_control.calls()["put"] == 1


@pytest.mark.parametrize("given_session", [False, True])
def test_renewing_the_session_drops_pooled_connections(
    settings: ClientSettings, credentials, sandbox_control: SandboxControl, given_session: bool
):
    session = requests.Session() if given_session else None
    with OfferStateClient(settings, credentials, session=session) as client:
        client.count(Collector(COLLECTOR))
        before = client.transport.session
        adapter = before.get_adapter(sandbox_control.url)
        assert isinstance(adapter, HTTPAdapter)
        pooled = adapter.poolmanager
        assert len(pooled.pools) == 1  # the connection of that call, kept for the next

        client.transport.renew_session()

        assert len(pooled.pools) == 0
        # A session of ours is replaced; the caller's is kept (only its pools are closed).
        assert (client.transport.session is before) is given_session
        adapter = client.transport.session.get_adapter(sandbox_control.url)
        assert isinstance(adapter, HTTPAdapter)
        assert len(adapter.poolmanager.pools) == 0
        assert client.count(Collector(COLLECTOR)) >= 0
