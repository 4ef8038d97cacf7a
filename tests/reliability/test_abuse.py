"""Abuse: reaching another collector, odd bodies, odd characters, lying upstream answers.
Each is a clear 4xx (or 502 for a lying upstream) and nothing reaches AIR MILES it should not."""

from __future__ import annotations

import json

import pytest

from tests.support.functions import M2M, READ, WRITE, Function, event, offer_event
from tests.support.inprocess import Deployed
from tests.support.liar import entry, lying_upstream
from tests.support.sandbox_control import SandboxControl

MEMBER, OTHER = "80000000110", "80000000001"
SAVE = {"states": [{"name": "SAVE", "value": "SAVED"}]}


def _nothing_upstream(sandbox: SandboxControl) -> None:
    assert sum(sandbox.calls().values()) == 0


def _error(answer: tuple[int, dict, dict], status: int, code: str) -> None:
    got, _, body = answer
    assert (got, body["error"]["code"]) == (status, code), body


# ------------------------------------------------------------------ another collector


def test_member_cannot_name_another_collector_in_the_path(update_state: Function, sandbox):
    answer = update_state.call(offer_event(OTHER, SAVE))
    _error(answer, 400, "VALIDATION_ERROR")
    _nothing_upstream(sandbox)


def test_member_cannot_name_another_collector_in_the_query(get_state: Function, sandbox):
    answer = get_state.call(
        event("GET", "/v1/offers/states/count", query=[("collectorNumber", OTHER)])
    )
    _error(answer, 400, "VALIDATION_ERROR")
    _nothing_upstream(sandbox)


def test_member_cannot_name_another_collector_in_the_body(update_state: Function, sandbox):
    offer = sandbox.untouched_offers(1)[0]
    body = {"stateChanges": [{"offerId": offer, "collectorId": OTHER, **SAVE}]}
    _error(update_state.call(event("PUT", "/v1/offers/states", body=body)), 400, "VALIDATION_ERROR")
    _nothing_upstream(sandbox)


@pytest.mark.parametrize("header", ["Collector-Number", "COLLECTOR-NUMBER", "collector-number"])
def test_member_cannot_name_another_collector_in_any_header_case(
    get_state: Function, sandbox, header
):
    answer = get_state.call(event("GET", "/v1/offers/states/count", headers={header: OTHER}))
    _error(answer, 400, "COLLECTOR_AMBIGUOUS")
    _nothing_upstream(sandbox)


def test_machine_token_without_the_m2m_scope_cannot_name_a_collector(get_state: Function, sandbox):
    answer = get_state.call(
        event(
            "GET",
            "/v1/offers/states/count",
            headers={"collector-number": OTHER},
            collector=None,
            scopes=(READ, WRITE),
        )
    )
    _error(answer, 403, "FORBIDDEN")
    _nothing_upstream(sandbox)


def test_writing_needs_the_write_scope_even_for_machines(update_state: Function, sandbox):
    offer = sandbox.untouched_offers(1)[0]
    answer = update_state.call(
        offer_event(
            offer, SAVE, headers={"collector-number": OTHER}, collector=None, scopes=(READ, M2M)
        )
    )
    _error(answer, 403, "FORBIDDEN")
    _nothing_upstream(sandbox)


# ------------------------------------------------------------------ bodies


def test_deeply_nested_json_is_a_validation_error(update_state: Function, sandbox):
    deep = "[" * 30000 + "]" * 30000  # under 64 KiB, far past any parser's recursion limit
    request = event(
        "PUT", "/v1/offers/states", body=deep, headers={"content-type": "application/json"}
    )
    _error(update_state.call(request), 400, "VALIDATION_ERROR")
    _nothing_upstream(sandbox)


def test_huge_json_under_the_limit_is_a_validation_error(update_state: Function, sandbox):
    offer = sandbox.untouched_offers(1)[0]
    body = {"stateChanges": [{"offerId": offer, **SAVE}], "padding": "x" * 60_000}
    _error(update_state.call(event("PUT", "/v1/offers/states", body=body)), 400, "VALIDATION_ERROR")
    _nothing_upstream(sandbox)


def test_huge_json_over_the_limit_is_too_large(update_state: Function, sandbox):
    offer = sandbox.untouched_offers(1)[0]
    body = {"stateChanges": [{"offerId": offer, **SAVE}], "padding": "x" * 70_000}
    _error(
        update_state.call(event("PUT", "/v1/offers/states", body=body)), 413, "PAYLOAD_TOO_LARGE"
    )
    _nothing_upstream(sandbox)


@pytest.mark.parametrize(
    "content_type", ["text/json", "application/xml", "multipart/form-data", "application/jsonx"]
)
def test_wrong_content_types_are_unsupported(update_state: Function, sandbox, content_type):
    offer = sandbox.untouched_offers(1)[0]
    request = event(
        "PUT",
        "/v1/offers/states",
        body=json.dumps({"stateChanges": [{"offerId": offer, **SAVE}]}),
        headers={"content-type": content_type},
    )
    _error(update_state.call(request), 415, "UNSUPPORTED_MEDIA_TYPE")
    _nothing_upstream(sandbox)


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
def test_odd_characters_in_every_write_field_are_refused(update_state: Function, sandbox, odd):
    offer = sandbox.untouched_offers(1)[0]
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
        _error(
            update_state.call(event("PUT", "/v1/offers/states", body=body)), 400, "VALIDATION_ERROR"
        )
    _error(update_state.call(offer_event(offer + odd, SAVE)), 400, "VALIDATION_ERROR")
    _nothing_upstream(sandbox)


@pytest.mark.parametrize("odd", ODD)
def test_odd_characters_in_every_read_parameter_and_header_are_refused(
    get_state: Function, sandbox, odd
):
    offer = sandbox.untouched_offers(1)[0]
    requests = [
        event("GET", "/v1/offers/states", query=[("offerId", offer + odd)]),
        event("GET", "/v1/offers/states/find", query=[("state", "SAVE:SAVED" + odd)]),
        event("GET", "/v1/offers/states/find", query=[("region", "ON" + odd)]),
        event("GET", "/v1/offers/states/find", query=[("pageSize", "1" + odd)]),
        event(
            "GET", "/v1/offers/states/count", headers={"x-local-time": "2026-11-25T16:59:0" + odd}
        ),
        event(
            "GET",
            "/v1/offers/states/count",
            headers={"collector-number": "8000000011" + odd},
            collector=None,
            scopes=(READ, M2M),
        ),
    ]
    for request in requests:
        _error(get_state.call(request), 400, "VALIDATION_ERROR")
    _nothing_upstream(sandbox)


def test_digits_of_other_scripts_are_not_a_collector_number(get_state: Function, sandbox):
    arabic_indic = "٨٠٠٠٠٠٠٠١١٠"  # 80000000110, in Arabic-Indic digits
    answer = get_state.call(
        event(
            "GET",
            "/v1/offers/states/count",
            headers={"collector-number": arabic_indic},
            collector=None,
            scopes=(READ, M2M),
        )
    )
    _error(answer, 400, "VALIDATION_ERROR")
    _nothing_upstream(sandbox)


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
