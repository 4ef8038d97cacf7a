"""The AIR MILES client against the sandbox over real loopback HTTP: every endpoint and
every documented error."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr

from local.sandbox import AUDIENCE, CLIENT_ID
from offer_state.client import Collector, MemberToken, OfferStateClient
from offer_state.config import ClientCredentials, ClientSettings
from offer_state.errors import (
    OfferNotFoundError,
    UnauthorizedError,
    UpstreamAuthError,
    UpstreamError,
    ValidationError,
)
from offer_state.models.airmiles_requests import CountQuery, FindQuery, StateFilter
from tests.support.sandbox_control import SandboxControl

COLLECTOR = "80000000110"
NO_CALLS = {"token": 0, "health": 0, "find": 0, "get": 0, "count": 0, "put": 0}


def test_health_reports_healthy(client: OfferStateClient, sandbox_control: SandboxControl):
    statuses = client.health()
    assert [s.healthy for s in statuses] == [True]
    assert sandbox_control.calls()["health"] == 1


def test_get_answers_only_offers_with_state_in_the_order_asked(
    client: OfferStateClient, sandbox_control: SandboxControl
):
    seeded = sandbox_control.states(COLLECTOR)
    untouched = sandbox_control.untouched_offers(2)
    with_state = [o for o, s in seeded.items() if set(s.values()) != {"UNSAVED"}]
    asked = [untouched[0], *reversed(with_state), untouched[1]]

    offers = client.get(Collector(COLLECTOR), [o.upper() for o in asked])

    assert [str(o.offer_id) for o in offers] == list(reversed(with_state))
    for offer in offers:
        assert {s.name: s.value for s in offer.states} == seeded[str(offer.offer_id)]
        assert all(s.updated_at and s.updated_at.endswith("Z") for s in offer.states)
    sent = [r for r in sandbox_control.requests() if r["endpoint"] == "get"][-1]
    assert sent["query"] == {"offerId": asked}  # lower-case on the wire


def test_find_pages_through_saved_and_opted_in_offers(
    client: OfferStateClient, sandbox_control: SandboxControl
):
    first = client.find(Collector(COLLECTOR), FindQuery(page_size=1))
    everything = client.find(Collector(COLLECTOR), FindQuery(page_size=100))

    assert first.page_number == 0
    assert first.page_size == 1
    assert first.total_count == len(everything.offers) >= 2
    assert first.offers == everything.offers[:1]
    second = client.find(Collector(COLLECTOR), FindQuery(page_size=1, page_number=1))
    assert second.offers == everything.offers[1:2]


def test_find_filters_by_state(client: OfferStateClient, sandbox_control: SandboxControl):
    opted_in = client.find(
        Collector(COLLECTOR), FindQuery(state=(StateFilter.parse("OPT_IN:OPTED_IN"),))
    )
    expected = {
        o for o, s in sandbox_control.states(COLLECTOR).items() if s.get("OPT_IN") == "OPTED_IN"
    }
    assert {str(o.offer_id) for o in opted_in.offers} == expected


def test_find_accepts_an_answer_without_paging_totals(
    client: OfferStateClient, sandbox_control: SandboxControl
):
    sandbox_control.config(findTotals=False)
    result = client.find(Collector(COLLECTOR))
    assert result.offers
    assert (result.page_number, result.page_size, result.total_count) == (None, None, None)


def test_count_matches_find_total(client: OfferStateClient, sandbox_control: SandboxControl):
    saved = CountQuery(state=(StateFilter.parse("SAVE:SAVED"),))
    count = client.count(Collector(COLLECTOR), saved)
    find = client.find(Collector(COLLECTOR), FindQuery(state=saved.state))
    assert count == find.total_count == len(find.offers) > 0
    assert client.count(Collector(COLLECTOR)) == client.find(Collector(COLLECTOR)).total_count


def test_put_sets_states_and_answers_204(client: OfferStateClient, sandbox_control: SandboxControl):
    offer = sandbox_control.untouched_offers(1)[0]
    status = client.put(
        Collector(COLLECTOR),
        [
            {
                "offerId": offer.upper(),
                "states": [
                    {"name": "SAVE", "value": "SAVED"},
                    {"name": "OPT_IN", "value": "OPTED_IN"},
                ],
            }
        ],
    )
    assert status == 204
    assert sandbox_control.states(COLLECTOR)[offer] == {"SAVE": "SAVED", "OPT_IN": "OPTED_IN"}
    sent = [r for r in sandbox_control.requests() if r["endpoint"] == "put"][-1]
    assert sent["method"] == "PUT"
    assert sent["path"] == "/offers/state-writer/v1/put"


def test_put_accepts_200_as_success(client: OfferStateClient, sandbox_control: SandboxControl):
    sandbox_control.config(putStatus=200)
    offer = sandbox_control.untouched_offers(1)[0]
    status = client.put(
        Collector(COLLECTOR), [{"offerId": offer, "states": [{"name": "SAVE", "value": "SAVED"}]}]
    )
    assert status == 200
    assert sandbox_control.states(COLLECTOR)[offer] == {"SAVE": "SAVED"}


def test_put_path_is_a_setting(
    settings: ClientSettings, credentials, sandbox_control: SandboxControl
):
    alias = settings.model_copy(update={"put_path": "/offers/state-reader/v1/put"})
    offer = sandbox_control.untouched_offers(1)[0]
    with OfferStateClient(alias, credentials) as client:
        client.put(
            Collector(COLLECTOR),
            [{"offerId": offer, "states": [{"name": "SAVE", "value": "SAVED"}]}],
        )
    assert [r["path"] for r in sandbox_control.requests() if r["endpoint"] == "put"] == [
        "/offers/state-reader/v1/put"
    ]
    assert sandbox_control.states(COLLECTOR)[offer] == {"SAVE": "SAVED"}


def test_put_of_an_unknown_offer_is_offer_not_found_and_changes_nothing(
    client: OfferStateClient, sandbox_control: SandboxControl
):
    known = sandbox_control.untouched_offers(1)[0]
    correlation = str(uuid.uuid4())
    with pytest.raises(OfferNotFoundError) as caught:
        client.put(
            Collector(COLLECTOR),
            [
                {"offerId": known, "states": [{"name": "SAVE", "value": "SAVED"}]},
                {"offerId": str(uuid.uuid4()), "states": [{"name": "SAVE", "value": "SAVED"}]},
            ],
            correlation_id=correlation,
        )
    assert caught.value.upstream_status == 404
    assert caught.value.response_code == "RECORD_NOT_FOUND"
    assert caught.value.correlation_id == correlation
    assert known not in sandbox_control.states(COLLECTOR)


def test_m2m_calls_send_every_documented_header(
    client: OfferStateClient, sandbox_control: SandboxControl
):
    correlation = str(uuid.uuid4())
    client.count(Collector(COLLECTOR), correlation_id=correlation, local_time="2026-11-25T16:59:00")
    headers = sandbox_control.requests()[-1]["headers"]
    assert headers["authorization"] == "Bearer <redacted>"
    assert headers["content-type"] == "application/json"
    assert headers["x-correlation-id"] == correlation
    assert headers["x-origin-client"] == "external:test-partner:web"
    assert headers["x-local-time"] == "2026-11-25T16:59:00"
    assert headers["collector-number"] == COLLECTOR
    assert sandbox_control.requests()[-1]["tokenKind"] == "m2m"


def test_a_new_correlation_id_is_generated_when_none_is_given(
    client: OfferStateClient, sandbox_control: SandboxControl
):
    client.count(Collector(COLLECTOR))
    headers = sandbox_control.requests()[-1]["headers"]
    assert uuid.UUID(headers["x-correlation-id"])
    assert "x-local-time" not in headers


def test_member_token_calls_never_send_collector_number(
    settings: ClientSettings, sandbox_control: SandboxControl
):
    member = MemberToken(sandbox_control.member_token(COLLECTOR))
    with OfferStateClient(settings) as client:  # no credentials needed
        assert client.count(member) == client.find(member).total_count
        assert client.health(member)[0].healthy
    assert all("collector-number" not in r["headers"] for r in sandbox_control.requests())
    assert {r["tokenKind"] for r in sandbox_control.requests()} == {"member"}
    assert sandbox_control.calls()["token"] == 0


def test_a_refused_member_token_is_unauthorized_without_retry(
    settings: ClientSettings, sandbox_control: SandboxControl
):
    with OfferStateClient(settings) as client, pytest.raises(UnauthorizedError):
        client.count(MemberToken("not-a-jwt"))
    assert sandbox_control.calls()["count"] == 1


@pytest.mark.parametrize(
    ("call", "expected_field"),
    [
        (lambda c: c.get(Collector(COLLECTOR), ["not-a-uuid"]), "0"),
        (lambda c: c.get(Collector(COLLECTOR), []), None),
        (lambda c: c.get(Collector(COLLECTOR), [str(uuid.uuid4()) for _ in range(101)]), None),
        (lambda c: c.count(Collector(COLLECTOR), local_time="25/11/2026 16:59"), None),
        (lambda c: c.count(Collector(COLLECTOR), correlation_id="abc"), None),
        (
            lambda c: c.put(
                Collector(COLLECTOR),
                [{"offerId": str(uuid.uuid4()), "states": [{"name": "OPT_IN", "value": "SAVED"}]}],
            ),
            "state_changes.0.states.0",
        ),
        (lambda c: c.put(Collector(COLLECTOR), []), "state_changes"),
        (lambda c: c.count(Collector("8000000011")), None),
        (lambda c: c.count(Collector("8000000011x")), None),
    ],
)
def test_invalid_input_is_refused_before_any_call(
    client: OfferStateClient, sandbox_control: SandboxControl, call, expected_field
):
    with pytest.raises(ValidationError) as caught:
        call(client)
    assert caught.value.status == 400
    if expected_field is not None:
        assert any(d["field"] == expected_field for d in caught.value.details)
    assert sandbox_control.calls() == NO_CALLS


def test_wrong_client_secret_is_an_auth_error_after_one_reread(
    settings: ClientSettings, sandbox_control: SandboxControl
):
    reads: list[bool] = []

    def wrong_secret(force: bool) -> ClientCredentials:
        reads.append(force)
        wrong = SecretStr("wrong")
        return ClientCredentials(client_id=CLIENT_ID, client_secret=wrong, audience=AUDIENCE)

    with (
        OfferStateClient(settings, wrong_secret) as client,
        pytest.raises(UpstreamAuthError) as caught,
    ):
        client.count(Collector(COLLECTOR))
    assert reads == [False, True]
    assert caught.value.upstream_status == 401
    assert caught.value.response_code == "invalid_client"
    assert "wrong" not in str(caught.value) and "wrong" not in repr(caught.value)
    assert sandbox_control.calls()["token"] == 2
    assert sandbox_control.calls()["count"] == 0


def test_rotated_secret_is_reread_once_and_the_call_succeeds(
    settings: ClientSettings, credentials: ClientCredentials, sandbox_control: SandboxControl
):
    rotated = SecretStr("rotated-away")
    stale = ClientCredentials(client_id=CLIENT_ID, client_secret=rotated, audience=AUDIENCE)

    def source(force: bool) -> ClientCredentials:
        return credentials if force else stale

    with OfferStateClient(settings, source) as client:
        assert client.count(Collector(COLLECTOR)) >= 0
    assert sandbox_control.calls()["token"] == 2


@pytest.mark.parametrize(
    ("client_id", "audience", "response_code"),
    [
        ("someone-else", AUDIENCE, "access_denied"),
        (CLIENT_ID, "https://elsewhere", "access_denied"),
    ],
)
def test_token_endpoint_refusals_are_auth_errors(
    settings: ClientSettings, sandbox_control: SandboxControl, client_id, audience, response_code
):
    creds = ClientCredentials(
        client_id=client_id, client_secret=SecretStr("sandbox-secret"), audience=audience
    )
    with OfferStateClient(settings, creds) as client, pytest.raises(UpstreamAuthError) as caught:
        client.health()
    assert caught.value.response_code == response_code
    assert sandbox_control.calls()["health"] == 0


def test_upstream_find_404_is_an_upstream_error(
    client: OfferStateClient, sandbox_control: SandboxControl
):
    sandbox_control.fault("find", "status", status=404)
    with pytest.raises(UpstreamError) as caught:
        client.find(Collector(COLLECTOR))
    assert caught.value.status == 502
    assert caught.value.upstream_status == 404
