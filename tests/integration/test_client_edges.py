"""The client at the edges: one deadline on the wall clock over a whole exchange, answers cut,
paced or mislabelled, a cap on an answer's size, every failure of requests mapped and counted,
and the rules that keep a change from being sent again once it may have been applied."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from offer_state.client import Collector, MemberToken, OfferStateClient
from offer_state.config import ClientCredentials, ClientSettings
from offer_state.errors import (
    OutcomeUnknownError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from offer_state.transport import Deadline
from tests.support.liar import LyingUpstream, lying_upstream
from tests.support.sandbox_control import SandboxControl
from tests.support.stack import free_ports

COLLECTOR = "80000000110"
MEMBER = MemberToken("member-token-from-elsewhere")
SLACK = 0.5  # scheduling noise on a loaded 2-core machine
# 50 ms a byte: a whole answer (170 bytes at the least) takes over 8 s, each byte well inside
# the tests' 0.5 s read timeout.
DRIP_MS = 50


def _save(offer: str) -> list[dict]:
    return [{"offerId": offer, "states": [{"name": "SAVE", "value": "SAVED"}]}]


class Attempts:
    """A CallObserver keeping (endpoint, status) of every attempt."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int | None]] = []

    def upstream_call(self, endpoint: str, status: int | None, seconds: float, attempt: int):
        self.seen.append((endpoint, status))


@pytest.fixture
def liar() -> Iterator[tuple[ClientSettings, LyingUpstream]]:
    with lying_upstream() as (url, handler):
        yield ClientSettings.for_environment(url, token_url=url + "/oauth/token"), handler


# ------------------------------------------------------------------ the deadline


def test_a_dripping_answer_ends_with_the_budget(
    client: OfferStateClient, sandbox_control: SandboxControl
):
    sandbox_control.fault("count", "drip", intervalMs=DRIP_MS)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeoutError):
        client.count(Collector(COLLECTOR))
    assert time.monotonic() - started < client.settings.total_budget + SLACK
    assert sandbox_control.calls()["count"] == 1  # the deadline is spent: no second attempt


def test_a_dripping_answer_ends_with_the_deadline_given(
    client: OfferStateClient, sandbox_control: SandboxControl
):
    client.count(Collector(COLLECTOR))  # the token is fetched and cached
    sandbox_control.fault("find", "drip", intervalMs=DRIP_MS)
    given = 0.5  # seconds: far less than the client's own budget
    started = time.monotonic()
    with pytest.raises(UpstreamTimeoutError):
        client.find(Collector(COLLECTOR), deadline=Deadline.after(given))
    assert time.monotonic() - started < given + SLACK


def test_a_put_with_too_little_time_left_is_not_sent(
    client: OfferStateClient, sandbox_control: SandboxControl
):
    client.count(Collector(COLLECTOR))  # the token is fetched and cached
    offer = sandbox_control.untouched_offers(1)[0]
    short = Deadline.after(client.settings.put_min_seconds / 2)
    with pytest.raises(UpstreamTimeoutError) as caught:
        client.put(Collector(COLLECTOR), _save(offer), deadline=short)
    assert "not sent" in caught.value.message
    assert not caught.value.outcome_unknown
    assert sandbox_control.calls()["put"] == 0


# ------------------------------------------------------------------ wire faults on reads


@pytest.mark.parametrize("mode", ["truncate", "badGzip"])
def test_a_cut_or_undecodable_answer_to_a_read_is_retried_then_an_upstream_error(
    settings: ClientSettings,
    credentials: ClientCredentials,
    sandbox_control: SandboxControl,
    mode: str,
):
    attempts = Attempts()
    sandbox_control.fault("find", mode)
    with (
        OfferStateClient(settings, credentials, observer=attempts) as client,
        pytest.raises(UpstreamError) as caught,
    ):
        client.find(Collector(COLLECTOR))
    assert caught.value.status == 502
    # Each failed exchange is counted, as an error of its endpoint (no status: no answer).
    assert [s for e, s in attempts.seen if e == "find"] == [None] * (settings.max_retries + 1)
    assert sandbox_control.calls()["find"] == settings.max_retries + 1


def test_an_answer_over_the_size_cap_is_an_upstream_error_not_retried(liar):
    settings, handler = liar
    capped = settings.model_copy(update={"max_body_bytes": 1024})
    handler.answer = {"offers": [], "padding": "x" * 2048}
    with OfferStateClient(capped) as client, pytest.raises(UpstreamError) as caught:
        client.get(MEMBER, [str(uuid.uuid4())])
    assert "larger" in caught.value.message
    assert handler.calls == 1


def test_any_failure_of_requests_is_an_upstream_error(
    client: OfferStateClient, sandbox_control: SandboxControl
):
    # requests refuses a header value with a line break (InvalidHeader) before sending.
    transport = client.transport
    with pytest.raises(UpstreamError):
        transport.send(
            "count",
            "GET",
            sandbox_control.url + client.settings.count_path,
            deadline=transport.deadline(),
            correlation_id=None,
            headers={"X-Broken": "a\r\nb"},
        )


# ------------------------------------------------------------------ a change sent once


@pytest.mark.parametrize(("status", "cause"), [(502, UpstreamError), (504, UpstreamTimeoutError)])
def test_a_put_answered_502_or_504_is_sent_once_and_its_outcome_unknown(
    client: OfferStateClient, sandbox_control: SandboxControl, status: int, cause
):
    sandbox_control.fault("put", "status", status=status, retryAfter=0)
    with pytest.raises(OutcomeUnknownError) as caught:
        client.put(Collector(COLLECTOR), _save(sandbox_control.untouched_offers(1)[0]))
    assert (caught.value.status, caught.value.code) == (status, "OUTCOME_UNKNOWN")
    assert type(caught.value.__cause__) is cause
    assert caught.value.upstream_status == status
    assert "read the states again" in caught.value.message
    assert sandbox_control.calls()["put"] == 1


@pytest.mark.parametrize("status", [429, 503])
def test_a_put_refused_with_429_or_503_is_sent_again(
    client: OfferStateClient, sandbox_control: SandboxControl, status: int
):
    offer = sandbox_control.untouched_offers(1)[0]
    sandbox_control.fault("put", "status", status=status, retryAfter=0, count=1)
    assert client.put(Collector(COLLECTOR), _save(offer)) == 204
    assert sandbox_control.calls()["put"] == 2
    assert sandbox_control.states(COLLECTOR)[offer] == {"SAVE": "SAVED"}


@pytest.mark.parametrize("mode", ["truncate", "badGzip", "drip"])
def test_a_put_whose_answer_is_cut_undecodable_or_too_slow_is_of_unknown_outcome(
    client: OfferStateClient, sandbox_control: SandboxControl, mode: str
):
    offer = sandbox_control.untouched_offers(1)[0]
    spec = {"intervalMs": DRIP_MS} if mode == "drip" else {}
    sandbox_control.fault("put", mode, **spec)
    with pytest.raises(OutcomeUnknownError) as caught:
        client.put(Collector(COLLECTOR), _save(offer))
    assert caught.value.status == (504 if mode == "drip" else 502)
    assert sandbox_control.calls()["put"] == 1


def test_a_put_whose_answer_stops_in_its_headers_is_not_reported_as_applied(liar):
    settings, handler = liar
    # http.client reads a close in the headers as their end: a 200 without a body.
    handler.wire = b"HTTP/1.1 200 OK\r\nContent-Type: application/js"
    with OfferStateClient(settings) as client, pytest.raises(OutcomeUnknownError):
        client.put(MEMBER, _save(str(uuid.uuid4())))
    assert handler.calls == 1


def test_a_put_that_could_not_connect_is_tried_again(settings: ClientSettings):
    (port,) = free_ports(1)  # free a moment ago: nothing listens
    attempts = Attempts()
    dead = settings.model_copy(update={"base_url": f"http://127.0.0.1:{port}"})
    with (
        OfferStateClient(dead, observer=attempts) as client,
        pytest.raises(UpstreamUnavailableError) as caught,
    ):
        client.put(MEMBER, _save(str(uuid.uuid4())))
    assert not caught.value.outcome_unknown  # certainly not sent
    assert attempts.seen == [("put", None)] * (settings.max_retries + 1)
