"""Abuse: reaching another collector, odd bodies, odd characters, lying upstream answers.
Each is a clear 4xx (or 502 for a lying upstream) and nothing reaches AIR MILES it should not."""

from __future__ import annotations

import json

import pytest

from tests.support.functions import (
    M2M,
    MEMBER,
    OTHER,
    READ,
    SAVE,
    WRITE,
    Function,
    assert_error,
    assert_nothing_upstream,
    assert_refused,
    event,
    machine,
    offer_event,
)
from tests.support.inprocess import Deployed
from tests.support.liar import entry, lying_upstream
from tests.support.sandbox_control import SandboxControl

# ------------------------------------------------------------------ another collector


# Ways a path could name another collector, beside or instead of the offer id:
# (path, its path parameters, the answer the member gets).
OTHER_IN_THE_PATH = {
    "in the offer id's place": (
        f"/v1/offers/{OTHER}/states",
        {"offerId": OTHER},
        (400, "VALIDATION_ERROR"),
    ),
    "as a path parameter beside a valid offer id": (
        "/v1/offers/{offer}/states",
        {"offerId": "{offer}", "collectorNumber": OTHER, "collectorId": OTHER},
        (200, None),
    ),
    "as a path segment before the offer": (
        f"/v1/collectors/{OTHER}/offers/{{offer}}/states",
        {"collectorNumber": OTHER, "offerId": "{offer}"},
        (400, "VALIDATION_ERROR"),
    ),
    "as a path segment after the offer": (
        f"/v1/offers/{{offer}}/states/{OTHER}",
        {"offerId": "{offer}"},
        (400, "VALIDATION_ERROR"),
    ),
}


@pytest.mark.parametrize(
    ("path", "path_parameters", "expected"),
    OTHER_IN_THE_PATH.values(),
    ids=OTHER_IN_THE_PATH.keys(),
)
def test_member_cannot_name_another_collector_in_the_path(
    update_state: Function, sandbox_control: SandboxControl, path, path_parameters, expected
):
    """A member's write is about the member's own collector whatever the path says: AIR MILES
    is only ever asked about the member (or not at all), and the other collector's states do
    not change."""
    offer = sandbox_control.untouched_offers(1)[0]
    others_before = sandbox_control.states(OTHER)
    request = event(
        "PUT",
        path.format(offer=offer),
        body=SAVE,
        route_key="PUT /v1/offers/{offerId}/states",
        path_parameters={k: v.format(offer=offer) for k, v in path_parameters.items()},
    )

    status, _, body = update_state.call(request)

    assert (status, body.get("error", {}).get("code")) == expected, body
    asked_about = {
        r["headers"].get("collector-number")
        for r in sandbox_control.requests()
        if r["endpoint"] != "token"
    }
    assert asked_about <= {MEMBER}
    assert sandbox_control.states(OTHER) == others_before
    if status == 200:  # written, for the member
        assert asked_about == {MEMBER}
        assert sandbox_control.states(MEMBER)[offer] == {"SAVE": "SAVED"}
    else:
        assert_nothing_upstream(sandbox_control)


@pytest.mark.parametrize("name", ["collectorNumber", "collector", "collectorId"])
def test_member_cannot_name_another_collector_in_the_query(
    get_state: Function, sandbox_control, name
):
    answer = get_state.call(event("GET", "/v1/offers/states/count", query=[(name, OTHER)]))
    assert_refused(answer, 400, "VALIDATION_ERROR", sandbox_control)


def test_member_cannot_name_another_collector_in_the_body(update_state: Function, sandbox_control):
    offer = sandbox_control.untouched_offers(1)[0]
    body = {"stateChanges": [{"offerId": offer, "collectorId": OTHER, **SAVE}]}
    assert_refused(
        update_state.call(event("PUT", "/v1/offers/states", body=body)),
        400,
        "VALIDATION_ERROR",
        sandbox_control,
    )


@pytest.mark.parametrize("header", ["Collector-Number", "COLLECTOR-NUMBER", "collector-number"])
def test_member_cannot_name_another_collector_in_any_header_case(
    get_state: Function, sandbox_control, header
):
    answer = get_state.call(event("GET", "/v1/offers/states/count", headers={header: OTHER}))
    assert_refused(answer, 400, "COLLECTOR_AMBIGUOUS", sandbox_control)


def test_machine_token_without_the_m2m_scope_cannot_name_a_collector(
    get_state: Function, sandbox_control
):
    answer = get_state.call(event("GET", "/v1/offers/states/count", **machine(OTHER, READ, WRITE)))
    assert_refused(answer, 403, "FORBIDDEN", sandbox_control)


def test_writing_needs_the_write_scope_even_for_machines(update_state: Function, sandbox_control):
    offer = sandbox_control.untouched_offers(1)[0]
    answer = update_state.call(offer_event(offer, SAVE, **machine(OTHER, READ, M2M)))
    assert_refused(answer, 403, "FORBIDDEN", sandbox_control)


# ------------------------------------------------------------------ bodies


def test_deeply_nested_json_is_a_validation_error(update_state: Function, sandbox_control):
    deep = "[" * 30000 + "]" * 30000  # under 64 KiB, far past any parser's recursion limit
    request = event(
        "PUT", "/v1/offers/states", body=deep, headers={"content-type": "application/json"}
    )
    assert_refused(update_state.call(request), 400, "VALIDATION_ERROR", sandbox_control)


def test_huge_json_under_the_limit_is_a_validation_error(update_state: Function, sandbox_control):
    offer = sandbox_control.untouched_offers(1)[0]
    body = {"stateChanges": [{"offerId": offer, **SAVE}], "padding": "x" * 60_000}
    assert_refused(
        update_state.call(event("PUT", "/v1/offers/states", body=body)),
        400,
        "VALIDATION_ERROR",
        sandbox_control,
    )


def test_huge_json_over_the_limit_is_too_large(update_state: Function, sandbox_control):
    offer = sandbox_control.untouched_offers(1)[0]
    body = {"stateChanges": [{"offerId": offer, **SAVE}], "padding": "x" * 70_000}
    assert_refused(
        update_state.call(event("PUT", "/v1/offers/states", body=body)),
        413,
        "PAYLOAD_TOO_LARGE",
        sandbox_control,
    )


@pytest.mark.parametrize(
    "content_type", ["text/json", "application/xml", "multipart/form-data", "application/jsonx"]
)
def test_wrong_content_types_are_unsupported(update_state: Function, sandbox_control, content_type):
    offer = sandbox_control.untouched_offers(1)[0]
    request = event(
        "PUT",
        "/v1/offers/states",
        body=json.dumps({"stateChanges": [{"offerId": offer, **SAVE}]}),
        headers={"content-type": content_type},
    )
    assert_refused(update_state.call(request), 415, "UNSUPPORTED_MEDIA_TYPE", sandbox_control)


# ------------------------------------------------------------------ characters

ODD = [
    "\x00",
    "\u202e",
    "\ufeff",
    "\n",
    "\t",
    "٨",
    "\uff18",  # fullwidth 8
    "\U0001f600",
    "'; DROP TABLE",
    "%00",
    "\\u0000",
]


@pytest.mark.parametrize("odd", ODD)
def test_odd_characters_in_every_write_field_are_refused(
    update_state: Function, sandbox_control, odd
):
    offer = sandbox_control.untouched_offers(1)[0]
    bodies = [
        {"stateChanges": [{"offerId": offer + odd, **SAVE}]},
        {
            "stateChanges": [
                {"offerId": offer, "states": [{"name": "SAVE" + odd, "value": "SAVED"}]}
            ]
        },
        {
            "stateChanges": [
                {"offerId": offer, "states": [{"name": "SAVE", "value": odd + "SAVED"}]}
            ]
        },
    ]
    for body in bodies:
        assert_error(
            update_state.call(event("PUT", "/v1/offers/states", body=body)), 400, "VALIDATION_ERROR"
        )
    assert_refused(
        update_state.call(offer_event(offer + odd, SAVE)), 400, "VALIDATION_ERROR", sandbox_control
    )


@pytest.mark.parametrize("odd", ODD)
def test_odd_characters_in_every_read_parameter_and_header_are_refused(
    get_state: Function, sandbox_control, odd
):
    offer = sandbox_control.untouched_offers(1)[0]
    requests = [
        event("GET", "/v1/offers/states", query=[("offerId", offer + odd)]),
        event("GET", "/v1/offers/states/find", query=[("state", "SAVE:SAVED" + odd)]),
        event("GET", "/v1/offers/states/find", query=[("region", "ON" + odd)]),
        event("GET", "/v1/offers/states/find", query=[("pageSize", "1" + odd)]),
        event(
            "GET", "/v1/offers/states/count", headers={"x-local-time": "2026-11-25T16:59:0" + odd}
        ),
        event("GET", "/v1/offers/states/count", **machine("8000000011" + odd, READ, M2M)),
    ]
    for request in requests:
        assert_error(get_state.call(request), 400, "VALIDATION_ERROR")
    assert_nothing_upstream(sandbox_control)


def test_digits_of_other_scripts_are_not_a_collector_number(get_state: Function, sandbox_control):
    arabic_indic = "٨٠٠٠٠٠٠٠١١٠"  # 80000000110, in Arabic-Indic digits
    answer = get_state.call(
        event("GET", "/v1/offers/states/count", **machine(arabic_indic, READ, M2M))
    )
    assert_refused(answer, 400, "VALIDATION_ERROR", sandbox_control)


# ------------------------------------------------------------------ upstream answers that lie


@pytest.fixture
def lying_get_state(deployed: Deployed, monkeypatch: pytest.MonkeyPatch):
    with lying_upstream() as (url, liar):
        for name, value in deployed.function_environment("GetStateFunction").items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AIRMILES_ENV", url)
        monkeypatch.setenv("AIRMILES_TOKEN_URL", url + "/oauth/token")
        yield deployed.load("GetStateFunction"), liar, deployed


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        ("/v1/offers/states", {"offers": [entry("00000000-0000-4000-8000-000000000001", OTHER)]}),
        ("/v1/offers/states", {"offers": [entry("00000000-0000-4000-8000-000000000002", MEMBER)]}),
        (
            "/v1/offers/states/find",
            {"offers": [entry("00000000-0000-4000-8000-000000000001", OTHER)]},
        ),
    ],
    ids=[
        "GET about another collector",
        "GET about an unasked offer",
        "FIND about another collector",
    ],
)
def test_an_upstream_answer_that_lies_is_rejected(lying_get_state, path, answer):
    function, liar, deployed = lying_get_state
    liar.answer = answer
    query = [("offerId", "00000000-0000-4000-8000-000000000001")] if path.endswith("states") else []
    status, _, body = function.call(event("GET", path, query=query))
    assert (status, body["error"]["code"]) == (502, "UPSTREAM_ERROR")
    assert OTHER not in json.dumps(body)
    assert [i["outcome"] for i in deployed.audit_items()] == ["FAILED"]
