"""Who may touch which collector: every rule of docs/partner-api.md, "Identity", on both
functions."""

from __future__ import annotations

import pytest

from tests.support.functions import (
    M2M,
    MEMBER,
    OTHER,
    READ,
    SAVE,
    WRITE,
    Function,
    assert_refused,
    event,
    machine,
    offer_event,
)
from tests.support.inprocess import Deployed
from tests.support.sandbox_control import SandboxControl


def test_member_token_reads_its_own_collector(get_state: Function, sandbox_control: SandboxControl):
    status, _, _ = get_state.call(event("GET", "/v1/offers/states/count"))
    assert status == 200
    assert "collector-number" in sandbox_control.requests()[-1]["headers"]
    assert sandbox_control.requests()[-1]["headers"]["collector-number"] == MEMBER


def test_member_token_with_collector_number_is_ambiguous(
    get_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    answer = get_state.call(
        event("GET", "/v1/offers/states/count", headers={"collector-number": OTHER})
    )
    assert_refused(answer, 400, "COLLECTOR_AMBIGUOUS", sandbox_control)
    # Filed under the member's own collector, never under the one the header named.
    [item] = deployed.audit_items()
    assert (item["collector"], item["outcome"]) == ("*******0110", "REJECTED")


def test_member_token_cannot_write_another_collector_by_header(
    update_state: Function, sandbox_control: SandboxControl
):
    offer = sandbox_control.untouched_offers(1)[0]
    answer = update_state.call(offer_event(offer, SAVE, headers={"collector-number": OTHER}))
    assert_refused(answer, 400, "COLLECTOR_AMBIGUOUS", sandbox_control)
    assert offer not in sandbox_control.states(OTHER)


def test_machine_token_without_collector_number_is_refused(get_state: Function, sandbox_control):
    answer = get_state.call(
        event("GET", "/v1/offers/states/count", collector=None, scopes=(READ, M2M))
    )
    body = assert_refused(answer, 400, "VALIDATION_ERROR", sandbox_control)
    assert body["error"]["details"][0]["field"] == "Collector-Number"


@pytest.mark.parametrize("number", ["8000000011", "800000001100", "8000000011a", "80000 00110", ""])
def test_machine_token_with_a_bad_collector_number_is_refused(
    get_state: Function, sandbox_control: SandboxControl, deployed: Deployed, number: str
):
    answer = get_state.call(event("GET", "/v1/offers/states/count", **machine(number, READ, M2M)))
    assert_refused(answer, 400, "VALIDATION_ERROR", sandbox_control)
    assert deployed.audit_items() == []  # no trustworthy collector to file it under


def test_token_without_m2m_scope_cannot_name_a_collector(get_state: Function, sandbox_control):
    answer = get_state.call(event("GET", "/v1/offers/states/count", **machine(OTHER, READ)))
    assert_refused(answer, 403, "FORBIDDEN", sandbox_control)


def test_token_naming_no_collector_is_forbidden(get_state: Function, sandbox_control):
    answer = get_state.call(event("GET", "/v1/offers/states/count", collector=None, scopes=(READ,)))
    assert_refused(answer, 403, "FORBIDDEN", sandbox_control)


def test_a_claim_that_is_not_a_collector_number_is_forbidden(get_state: Function, sandbox_control):
    answer = get_state.call(event("GET", "/v1/offers/states/count", collector="12345"))
    assert_refused(answer, 403, "FORBIDDEN", sandbox_control)


def test_reading_needs_the_read_scope(get_state: Function, sandbox_control):
    answer = get_state.call(event("GET", "/v1/offers/states/count", scopes=(WRITE,)))
    assert_refused(answer, 403, "FORBIDDEN", sandbox_control)


def test_writing_needs_the_write_scope(update_state: Function, sandbox_control: SandboxControl):
    offer = sandbox_control.untouched_offers(1)[0]
    answer = update_state.call(offer_event(offer, SAVE, scopes=(READ,)))
    assert_refused(answer, 403, "FORBIDDEN", sandbox_control)


def test_machine_token_writes_for_the_named_collector(
    update_state: Function, sandbox_control: SandboxControl
):
    offer = sandbox_control.untouched_offers(1)[0]
    status, _, _ = update_state.call(offer_event(offer, SAVE, **machine(OTHER, WRITE, M2M)))
    assert status == 200
    assert sandbox_control.states(OTHER)[offer] == {"SAVE": "SAVED"}
    assert offer not in sandbox_control.states(MEMBER)


@pytest.mark.parametrize(
    "client",
    [
        {"client_id": "someone-else"},
        {"client_id": None, "azp": "someone-else"},
        {"client_id": None},
    ],
    ids=["other client_id", "other azp", "no client named"],
)
def test_a_machine_client_not_in_machine_client_ids_may_not_name_a_collector(
    get_state: Function,
    update_state: Function,
    sandbox_control: SandboxControl,
    deployed: Deployed,
    client: dict,
):
    offer = sandbox_control.untouched_offers(1)[0]
    claims = {k: v for k, v in client.items() if v is not None}
    read = event("GET", "/v1/offers/states/count", **machine(OTHER, READ, M2M))
    write = offer_event(offer, SAVE, **machine(OTHER, WRITE, M2M))
    for function, request in ((get_state, read), (update_state, write)):
        token = request["requestContext"]["authorizer"]["jwt"]["claims"]
        token.pop("client_id")
        token.update(claims)
        body = assert_refused(function.call(request), 403, "FORBIDDEN", sandbox_control)
        assert "machine client" in body["error"]["message"]
    assert deployed.audit_items() == []  # the collector it named is not to be trusted


def test_an_allowed_machine_client_may_name_it_by_azp(
    get_state: Function, sandbox_control: SandboxControl
):
    request = event("GET", "/v1/offers/states/count", **machine(OTHER, READ, M2M))
    claims = request["requestContext"]["authorizer"]["jwt"]["claims"]
    claims["azp"] = claims.pop("client_id")
    assert get_state.call(request)[0] == 200
    assert sandbox_control.requests()[-1]["headers"]["collector-number"] == OTHER


def test_no_machine_client_may_name_a_collector_when_none_is_listed(
    deployed: Deployed, sandbox_control: SandboxControl, monkeypatch: pytest.MonkeyPatch
):
    """The default (MachineClientIds blank); member tokens are unaffected."""
    get_state = deployed.with_parameters(MachineClientIds="").start("GetStateFunction", monkeypatch)
    answer = get_state.call(event("GET", "/v1/offers/states/count", **machine(OTHER, READ, M2M)))
    assert_refused(answer, 403, "FORBIDDEN", sandbox_control)
    assert get_state.call(event("GET", "/v1/offers/states/count"))[0] == 200  # a member token


def test_collector_in_the_body_is_not_a_field(
    update_state: Function, sandbox_control: SandboxControl
):
    offer = sandbox_control.untouched_offers(1)[0]
    body = {"collectorNumber": OTHER, "stateChanges": [{"offerId": offer, **SAVE}]}
    answer = update_state.call(event("PUT", "/v1/offers/states", body=body))
    assert_refused(answer, 400, "VALIDATION_ERROR", sandbox_control)
