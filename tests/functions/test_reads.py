"""get-state: health, GET, FIND and COUNT, their answers and their audit records."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.aws_faults import stored_by_an_earlier_attempt
from tests.support.functions import (
    M2M,
    MEMBER,
    OTHER,
    READ,
    Function,
    assert_error,
    event,
    machine,
)
from tests.support.inprocess import Deployed
from tests.support.sandbox_control import SandboxControl


def _ids(query_offers: list[str]) -> list[tuple[str, str]]:
    return [("offerId", o) for o in query_offers]


def test_health_needs_no_token_and_is_cached(get_state: Function, sandbox_control: SandboxControl):
    for _ in range(3):
        status, _, body = get_state.call(event("GET", "/health", authorized=False))
        assert status == 200
        assert body["status"] == "ok"
        assert body["upstream"]["healthy"] is True
    assert sandbox_control.calls()["health"] == 1


@pytest.mark.parametrize(
    ("fault", "status", "code", "calls"),
    [
        # AIR MILES down: the first probe's three attempts, then the failure again.
        (
            {"endpoint": "health", "mode": "status", "status": 503, "retryAfter": 0},
            502,
            "UPSTREAM_ERROR",
            {"health": 3, "token": 1},
        ),
        # Our credentials refused: the first probe's two token requests, then no more.
        (
            {"endpoint": "token", "mode": "status", "status": 401},
            502,
            "UPSTREAM_ERROR",
            {"health": 0, "token": 2},
        ),
    ],
    ids=["AIR MILES down", "credentials refused"],
)
def test_a_failed_health_check_is_cached_briefly_too(
    get_state: Function, sandbox_control: SandboxControl, fault, status, code, calls
):
    sandbox_control.fault(**fault)
    for _ in range(5):
        assert_error(get_state.call(event("GET", "/health", authorized=False)), status, code)
    assert {k: sandbox_control.calls()[k] for k in calls} == calls


def test_get_states_lists_every_offer_asked_in_order(
    get_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    seeded = sandbox_control.states(MEMBER)
    fresh = sandbox_control.untouched_offers(2)
    both = next(o for o, s in seeded.items() if s == {"OPT_IN": "OPTED_IN", "SAVE": "SAVED"})
    asked = [fresh[0], both, fresh[1], fresh[0]]

    status, headers, body = get_state.call(
        event("GET", "/v1/offers/states", query=_ids([a.upper() for a in asked]))
    )

    assert status == 200
    assert [o["offerId"] for o in body["offers"]] == [fresh[0], both, fresh[1]]
    assert body["offers"][0] == {
        "offerId": fresh[0],
        "optedIn": False,
        "saved": False,
        "states": [],
    }
    labelled = body["offers"][1]
    assert (labelled["optedIn"], labelled["saved"]) == (True, True)
    assert {(s["name"], s["value"]) for s in labelled["states"]} == {
        ("OPT_IN", "OPTED_IN"),
        ("SAVE", "SAVED"),
    }
    assert all(s["updatedAt"].endswith("Z") for s in labelled["states"])
    assert sandbox_control.calls()["get"] == 1
    [item] = deployed.audit_items()
    assert item["action"] == "GET_STATES"
    assert item["outcome"] == "SUCCEEDED"
    assert item["offerIds"] == [fresh[0], both, fresh[1]]
    assert item["correlationId"] == headers["X-Correlation-Id"]


def test_comma_separated_and_repeated_offer_ids_mean_the_same(get_state: Function, sandbox_control):
    fresh = sandbox_control.untouched_offers(3)
    _, _, repeated = get_state.call(event("GET", "/v1/offers/states", query=_ids(fresh)))
    _, _, joined = get_state.call(
        event("GET", "/v1/offers/states", query=[("offerId", ",".join(fresh))])
    )
    assert repeated == joined
    assert len(joined["offers"]) == 3


def test_unsaved_offer_is_not_saved(get_state: Function, sandbox_control: SandboxControl):
    collector = "84095202006"
    unsaved = next(
        o for o, s in sandbox_control.states(collector).items() if s == {"SAVE": "UNSAVED"}
    )
    _, _, body = get_state.call(
        event("GET", "/v1/offers/states", query=_ids([unsaved]), collector=collector)
    )
    assert body["offers"] == [{"offerId": unsaved, "optedIn": False, "saved": False, "states": []}]


def test_find_passes_filters_and_paging_and_answers_totals(
    get_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    query = [
        ("state", "SAVE:SAVED"),
        ("state", "OPT_IN:OPTED_IN"),
        ("pageNumber", "1"),
        ("pageSize", "2"),
        ("firstSortBy", "offerId"),
        ("firstSortByDescending", "false"),
        ("region", "ON"),
    ]
    status, _, body = get_state.call(event("GET", "/v1/offers/states/find", query=query))
    assert status == 200
    assert (body["pageNumber"], body["pageSize"]) == (1, 2)
    assert "totalCount" in body
    sent = sandbox_control.requests()[-1]
    assert sent["query"]["state"] == ["SAVE:SAVED", "OPT_IN:OPTED_IN"]
    assert sent["query"]["pageNumber"] == ["1"]
    assert sent["query"]["firstSortBy"] == ["offerId"]
    assert sent["query"]["region"] == ["ON"]
    [item] = deployed.audit_items()
    assert item["action"] == "FIND_STATES"
    assert item["requestedStates"] == [
        {"name": "SAVE", "value": "SAVED"},
        {"name": "OPT_IN", "value": "OPTED_IN"},
    ]


def test_find_labels_saved_and_opted_in(get_state: Function, sandbox_control: SandboxControl):
    _, _, body = get_state.call(event("GET", "/v1/offers/states/find", query=[("pageSize", "100")]))
    stored = sandbox_control.states(MEMBER)
    assert body["totalCount"] == len(body["offers"]) == len(stored)
    for offer in body["offers"]:
        states = stored[offer["offerId"]]
        assert offer["saved"] == (states.get("SAVE") == "SAVED")
        assert offer["optedIn"] == (states.get("OPT_IN") == "OPTED_IN")


def test_find_without_upstream_totals_leaves_them_out(get_state: Function, sandbox_control):
    sandbox_control.config(findTotals=False)
    status, _, body = get_state.call(event("GET", "/v1/offers/states/find"))
    assert status == 200
    assert "totalCount" not in body
    assert (body["pageNumber"], body["pageSize"]) == (0, 20)


def test_count_answers_how_many_offers_match_the_filter_and_is_audited(
    get_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    status, _, body = get_state.call(
        event("GET", "/v1/offers/states/count", query=[("state", "OPT_IN:OPTED_IN")])
    )
    opted_in = [
        o for o, s in sandbox_control.states(MEMBER).items() if s.get("OPT_IN") == "OPTED_IN"
    ]
    assert (status, body) == (200, {"count": len(opted_in)})
    assert deployed.audit_items()[0]["action"] == "COUNT_STATES"


def test_machine_token_names_the_collector_in_the_header(
    get_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    status, _, body = get_state.call(
        event("GET", "/v1/offers/states/count", **machine(OTHER, READ, M2M))
    )
    assert (status, body) == (200, {"count": 3})
    assert sandbox_control.requests()[-1]["headers"]["collector-number"] == OTHER
    [item] = deployed.audit_items()
    assert item["tokenKind"] == "m2m"
    assert item["collector"] == "*******0001"
    assert item["principal"] == "partner-backend@clients"


def test_audit_item_is_pseudonymous_and_complete(
    get_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    correlation = str(uuid.uuid4())
    get_state.call(
        event(
            "GET",
            "/v1/offers/states/count",
            headers={"x-correlation-id": correlation, "user-agent": "PartnerApp/1.0"},
        )
    )
    [item] = deployed.audit_items()
    assert item["pk"].startswith("COLLECTOR#")  # a pseudonym (tests/functions/test_pseudonyms.py)
    assert MEMBER not in json.dumps(item, default=str)
    assert item["collector"] == "*******0110"
    assert item["sk"].startswith(item["createdAt"] + "#")
    assert item["correlationId"] == correlation
    assert item["originClient"] == "external:test-partner:web"
    assert item["principal"] == "member-1"
    assert item["sourceIp"] == "127.0.0.1"
    assert item["userAgent"] == "PartnerApp/1.0"
    assert item["httpStatus"] == 200
    assert item["upstreamStatus"] == 200
    assert item["latencyMs"] >= 0
    retention = int(deployed.template.parameters["AuditRetentionDays"]) * 86400
    assert abs(int(item["expiresAt"]) - (int(_epoch(item["createdAt"])) + retention)) <= 1


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def test_a_valid_correlation_id_is_echoed_and_sent_upstream(get_state: Function, sandbox_control):
    correlation = str(uuid.uuid4())
    _, headers, _ = get_state.call(
        event("GET", "/v1/offers/states/count", headers={"x-correlation-id": correlation.upper()})
    )
    assert headers["X-Correlation-Id"] == correlation
    assert sandbox_control.requests()[-1]["headers"]["x-correlation-id"] == correlation


def test_an_invalid_correlation_id_is_replaced(get_state: Function):
    _, headers, _ = get_state.call(
        event("GET", "/v1/offers/states/count", headers={"x-correlation-id": "not a uuid"})
    )
    assert uuid.UUID(headers["X-Correlation-Id"])


def test_local_time_is_passed_upstream(get_state: Function, sandbox_control: SandboxControl):
    get_state.call(
        event("GET", "/v1/offers/states/count", headers={"x-local-time": "2026-11-25T16:59:00"})
    )
    assert sandbox_control.requests()[-1]["headers"]["x-local-time"] == "2026-11-25T16:59:00"


@pytest.mark.parametrize(
    ("path", "query", "headers", "field"),
    [
        ("/v1/offers/states", [("offerId", "nope")], {}, "offerId.0"),
        ("/v1/offers/states", [], {}, "offerId"),
        ("/v1/offers/states", [("offerId", str(uuid.uuid4())) for _ in range(101)], {}, "offerId"),
        ("/v1/offers/states/find", [("state", "OPT_IN:SAVED")], {}, "state"),
        ("/v1/offers/states/find", [("state", "SAVED")], {}, "state"),
        ("/v1/offers/states/find", [("pageSize", "0")], {}, "pageSize"),
        ("/v1/offers/states/find", [("pageSize", "101")], {}, "pageSize"),
        ("/v1/offers/states/find", [("pageNumber", "-1")], {}, "pageNumber"),
        ("/v1/offers/states/find", [("pageNumber", "x")], {}, "pageNumber"),
        ("/v1/offers/states/find", [("region", "XX")], {}, "region"),
        ("/v1/offers/states/find", [("partnerId", "p1")], {}, "partnerId"),
        ("/v1/offers/states/find", [("firstSortBy", "name")], {}, "firstSortBy"),
        (
            "/v1/offers/states/find",
            [("firstSortByDescending", "maybe")],
            {},
            "firstSortByDescending",
        ),
        ("/v1/offers/states/count", [("pageSize", "5")], {}, "pageSize"),
        ("/v1/offers/states/count", [("offerid", "x")], {}, "offerid"),
        ("/v1/offers/states/count", [], {"x-local-time": "2026-11-25 16:59"}, "x-local-time"),
        ("/v1/offers/states/count", [], {"x-local-time": "2026-13-25T16:59:00"}, "x-local-time"),
    ],
)
def test_invalid_requests_are_refused_before_any_upstream_call(
    get_state: Function,
    sandbox_control: SandboxControl,
    deployed: Deployed,
    path,
    query,
    headers,
    field,
):
    status, answer_headers, body = get_state.call(event("GET", path, query=query, headers=headers))
    assert status == 400
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert field in [d["field"] for d in body["error"]["details"]]
    assert body["correlationId"] == answer_headers["X-Correlation-Id"]
    assert sum(sandbox_control.calls().values()) == 0
    [item] = deployed.audit_items()
    assert (item["outcome"], item["httpStatus"], item["errorCode"]) == (
        "REJECTED",
        400,
        "VALIDATION_ERROR",
    )


@pytest.mark.parametrize(
    ("fault", "status", "code", "upstream_status"),
    [
        ({"mode": "status", "status": 500}, 502, "UPSTREAM_ERROR", 500),
        ({"mode": "status", "status": 502, "retryAfter": 0}, 502, "UPSTREAM_ERROR", 502),
        ({"mode": "status", "status": 503, "retryAfter": 0}, 502, "UPSTREAM_ERROR", 503),
        ({"mode": "status", "status": 504}, 504, "UPSTREAM_TIMEOUT", 504),
        ({"mode": "status", "status": 429, "retryAfter": 30}, 429, "RATE_LIMITED", 429),
        ({"mode": "status", "status": 400}, 400, "VALIDATION_ERROR", 400),
        ({"mode": "status", "status": 404}, 404, "OFFER_NOT_FOUND", 404),
        ({"mode": "timeout"}, 504, "UPSTREAM_TIMEOUT", None),
        ({"mode": "malformed"}, 502, "UPSTREAM_ERROR", 200),
        ({"mode": "reset"}, 502, "UPSTREAM_ERROR", None),
    ],
)
def test_upstream_failures_map_to_their_status_and_are_audited(
    get_state: Function,
    sandbox_control: SandboxControl,
    deployed: Deployed,
    fault,
    status,
    code,
    upstream_status,
):
    sandbox_control.fault("get", **fault)
    got, headers, body = get_state.call(
        event("GET", "/v1/offers/states", query=_ids(sandbox_control.untouched_offers(1)))
    )
    assert (got, body["error"]["code"]) == (status, code)
    assert "Traceback" not in json.dumps(body)
    if status == 429:
        assert headers["Retry-After"] == "30"
    [item] = deployed.audit_items()
    assert item["outcome"] == "FAILED"
    assert item["httpStatus"] == status
    assert item.get("upstreamStatus") == upstream_status
    assert item["errorCode"] == code


def test_an_audit_item_stored_by_a_retried_put_item_is_recognised_as_ours(
    get_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    stored_by_an_earlier_attempt(get_state.module.service.dynamodb, deployed.refs["AuditTable"])
    status, _, body = get_state.call(event("GET", "/v1/offers/states/count"))
    assert status == 200
    assert body["count"] >= 0
    assert [i["outcome"] for i in deployed.audit_items()] == ["SUCCEEDED"]
