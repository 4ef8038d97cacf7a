"""Every sample event in events/ runs through its function and gets the answer it shows off."""

from __future__ import annotations

import json

import pytest

from tests.support.functions import EVENTS_DIR, Function, assert_nothing_upstream
from tests.support.inprocess import Deployed

# event file -> (function, status, error code or None)
EXPECTED = {
    "health": ("get", 200, None),
    "get_states": ("get", 200, None),
    "find_states": ("get", 200, None),
    "count_states": ("get", 200, None),
    "m2m_get_states": ("get", 200, None),
    "update_offer_states": ("update", 200, None),
    "update_states_batch": ("update", 200, None),
    "error_bad_offer_id": ("get", 400, "VALIDATION_ERROR"),
    "error_too_many_offer_ids": ("get", 400, "VALIDATION_ERROR"),
    "error_bad_state_pair": ("update", 400, "VALIDATION_ERROR"),
    "error_malformed_json": ("update", 400, "VALIDATION_ERROR"),
    "error_missing_collector_claim": ("get", 403, "FORBIDDEN"),
    "error_m2m_without_collector_number": ("get", 400, "VALIDATION_ERROR"),
    "error_member_with_collector_number": ("get", 400, "COLLECTOR_AMBIGUOUS"),
}


# The scheduled functions' events: event file -> (function, its result on a new stack, less
# what differs from run to run).
SCHEDULED: dict[str, tuple[str, dict[str, object]]] = {
    "scheduled_reconcile": (
        "ReconcilePendingFunction",
        {"reconciled": 0, "finishedMeanwhile": 0, "complete": True},
    ),
    "scheduled_token_refresh": (
        "TokenRefresherFunction",
        {"outcome": "refreshed", "overdueSeconds": 0.0},  # no token yet: one fetched
    ),
}


def test_every_event_file_has_an_expectation():
    assert {p.stem for p in EVENTS_DIR.glob("*.json")} == set(EXPECTED) | set(SCHEDULED)


@pytest.mark.parametrize("name", sorted(SCHEDULED))
def test_sample_scheduled_event_runs_its_function(name: str, deployed: Deployed, monkeypatch):
    function, expected = SCHEDULED[name]
    event = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    assert event["detail-type"] == "Scheduled Event"
    result = deployed.start(function, monkeypatch).invoke(event)
    assert {key: result[key] for key in expected} == expected


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_event_answers_as_documented(
    name: str, get_state: Function, update_state: Function, sandbox_control
):
    function_kind, status, code = EXPECTED[name]
    event = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    function = get_state if function_kind == "get" else update_state

    got_status, headers, body = function.call(event)

    assert got_status == status, body
    assert headers["X-Correlation-Id"] == "bcf529ae-0de0-4ded-90f5-e050ce2df0e3"
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    if code is None:
        assert "error" not in body
    else:
        assert body["error"]["code"] == code
        assert body["correlationId"] == "bcf529ae-0de0-4ded-90f5-e050ce2df0e3"
        assert_nothing_upstream(sandbox_control)


def test_get_states_event_labels_every_offer_in_order(get_state: Function):
    event = json.loads((EVENTS_DIR / "get_states.json").read_text())
    asked = event["queryStringParameters"]["offerId"].split(",")
    _, _, body = get_state.call(event)
    assert [o["offerId"] for o in body["offers"]] == asked
    assert [(o["optedIn"], o["saved"]) for o in body["offers"]] == [
        (True, True),
        (False, False),
        (True, False),
    ]
