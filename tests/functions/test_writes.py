"""update-state: single and batch changes, validation, idempotency, write-ahead audit."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from local.sandbox.seed import FRESH_OFFERS
from tests.support.aws_faults import (
    refuse,
    stored_by_an_earlier_attempt,
    stored_then_answers_lost,
)
from tests.support.functions import (
    M2M,
    MEMBER,
    OPT_IN,
    OTHER,
    SAVE,
    WRITE,
    Function,
    assert_error,
    assert_refused,
    event,
    machine,
    offer_event,
)
from tests.support.inprocess import Deployed
from tests.support.sandbox_control import SandboxControl
from tests.support.waiting import wait_until

UNTOUCHED = FRESH_OFFERS[0].offer_id  # what `sandbox_control.untouched_offers(1)[0]` answers
KEY = "5c0ffee0-1d2e-4f3a-8b4c-5d6e7f8a9b0c"  # an Idempotency-Key


def _batch(*changes: tuple[str, list[dict]]) -> dict:
    return {"stateChanges": [{"offerId": o, "states": s} for o, s in changes]}


def test_single_offer_change_is_applied_and_answered(
    update_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    offer = sandbox_control.untouched_offers(1)[0]
    status, headers, body = update_state.call(offer_event(offer.upper(), OPT_IN))

    assert status == 200
    [change] = body["stateChanges"]
    assert change["offerId"] == offer
    [state] = change["states"]
    assert (state["name"], state["value"]) == ("OPT_IN", "OPTED_IN")
    assert state["updatedAt"].endswith("Z")
    assert "Idempotent-Replayed" not in headers
    assert sandbox_control.states(MEMBER)[offer] == {"OPT_IN": "OPTED_IN"}
    assert sandbox_control.calls()["put"] == 1
    [item] = deployed.audit_items()
    assert item["action"] == "UPDATE_STATES"
    assert item["outcome"] == "SUCCEEDED"
    assert item["requestedStates"] == [{"offerId": offer, **OPT_IN}]
    assert item["statesAfter"] == body["stateChanges"]
    assert (item["httpStatus"], item["upstreamStatus"]) == (200, 204)


def test_batch_change_is_applied_in_one_upstream_call(
    update_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    a, b, c = sandbox_control.untouched_offers(3)
    body = _batch(
        (a, SAVE["states"]),
        (b, SAVE["states"] + OPT_IN["states"]),
        (c, [{"name": "SAVE", "value": "UNSAVED"}]),
    )
    status, _, answer = update_state.call(event("PUT", "/v1/offers/states", body=body))
    assert status == 200
    assert [c["offerId"] for c in answer["stateChanges"]] == [a, b, c]
    assert sandbox_control.calls()["put"] == 1
    stored = sandbox_control.states(MEMBER)
    assert stored[a] == {"SAVE": "SAVED"}
    assert stored[b] == {"SAVE": "SAVED", "OPT_IN": "OPTED_IN"}
    assert stored[c] == {"SAVE": "UNSAVED"}
    assert deployed.audit_items()[0]["offerIds"] == [a, b, c]


def test_unsaving_a_saved_offer_leaves_it_unsaved(
    update_state: Function, sandbox_control: SandboxControl
):
    offer = sandbox_control.untouched_offers(1)[0]
    update_state.call(offer_event(offer, SAVE))
    status, _, _ = update_state.call(
        offer_event(offer, {"states": [{"name": "SAVE", "value": "UNSAVED"}]})
    )
    assert status == 200
    assert sandbox_control.states(MEMBER)[offer] == {"SAVE": "UNSAVED"}


def test_25_changes_are_accepted(update_state: Function, sandbox_control: SandboxControl):
    offers = sandbox_control.untouched_offers(25)
    status, _, body = update_state.call(
        event("PUT", "/v1/offers/states", body=_batch(*[(o, SAVE["states"]) for o in offers]))
    )
    assert status == 200
    assert len(body["stateChanges"]) == 25


# (label, body): each names an untouched catalogue offer where it names one.
BAD_BODIES: list[tuple[str, object]] = [
    ("OPT_IN:SAVED", _batch((UNTOUCHED, [{"name": "OPT_IN", "value": "SAVED"}]))),
    ("OPT_IN:UNSAVED", _batch((UNTOUCHED, [{"name": "OPT_IN", "value": "UNSAVED"}]))),
    ("unknown name", _batch((UNTOUCHED, [{"name": "LIKE", "value": "SAVED"}]))),
    ("lower case", _batch((UNTOUCHED, [{"name": "save", "value": "saved"}]))),
    ("no states", _batch((UNTOUCHED, []))),
    ("no changes", {"stateChanges": []}),
    ("26 changes", _batch(*[(str(uuid.uuid4()), SAVE["states"]) for _ in range(26)])),
    ("same offer twice", _batch((UNTOUCHED, SAVE["states"]), (UNTOUCHED, OPT_IN["states"]))),
    (
        "same name twice",
        _batch((UNTOUCHED, SAVE["states"] + [{"name": "SAVE", "value": "UNSAVED"}])),
    ),
    ("bad offer id", _batch(("offer-1", SAVE["states"]))),
    ("unknown field", {**_batch((UNTOUCHED, SAVE["states"])), "extra": True}),
    ("unknown state field", _batch((UNTOUCHED, [{"name": "SAVE", "value": "SAVED", "x": 1}]))),
    ("not an object", [1, 2]),
    ("null", None),
    ("string", "stateChanges"),
]


@pytest.mark.parametrize("body", [pytest.param(body, id=label) for label, body in BAD_BODIES])
def test_invalid_batch_bodies_are_refused_before_any_upstream_call(
    update_state: Function, sandbox_control: SandboxControl, deployed: Deployed, body: object
):
    assert sandbox_control.untouched_offers(1)[0] == UNTOUCHED  # the offer the bodies name
    raw = json.dumps(body)
    answer = update_state.call(
        event("PUT", "/v1/offers/states", body=raw, headers={"content-type": "application/json"})
    )
    assert_refused(answer, 400, "VALIDATION_ERROR", sandbox_control)
    assert [i["outcome"] for i in deployed.audit_items()] == ["REJECTED"]


@pytest.mark.parametrize(
    ("offer_id", "body"),
    [
        ("not-a-uuid", SAVE),
        (None, {"states": [{"name": "OPT_IN", "value": "SAVED"}]}),
        (None, {"states": []}),
        (None, {"states": SAVE["states"], "offerId": "x"}),
        (None, {}),
    ],
)
def test_invalid_single_offer_requests_are_refused(
    update_state: Function, sandbox_control: SandboxControl, offer_id, body
):
    offer = offer_id or sandbox_control.untouched_offers(1)[0]
    assert_refused(
        update_state.call(offer_event(offer, body)), 400, "VALIDATION_ERROR", sandbox_control
    )


def test_malformed_json_is_a_validation_error(update_state: Function, sandbox_control):
    answer = update_state.call(
        event(
            "PUT",
            "/v1/offers/states",
            body='{"stateChanges": [',
            headers={"content-type": "application/json"},
        )
    )
    assert_refused(answer, 400, "VALIDATION_ERROR", sandbox_control)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_is_unsupported(
    update_state: Function, sandbox_control, content_type
):
    offer = sandbox_control.untouched_offers(1)[0]
    headers = {"content-type": content_type} if content_type else {}
    request = event(
        "PUT",
        "/v1/offers/states",
        body=json.dumps(_batch((offer, SAVE["states"]))),
        headers=headers,
    )
    if content_type is None:
        request["headers"].pop("content-type", None)
    assert_refused(update_state.call(request), 415, "UNSUPPORTED_MEDIA_TYPE", sandbox_control)


def test_a_body_over_64_kib_is_too_large(update_state: Function, sandbox_control: SandboxControl):
    body = json.dumps({"stateChanges": [], "padding": "x" * 70_000})
    answer = update_state.call(
        event("PUT", "/v1/offers/states", body=body, headers={"content-type": "application/json"})
    )
    assert_refused(answer, 413, "PAYLOAD_TOO_LARGE", sandbox_control)


def test_a_base64_body_is_decoded(update_state: Function, sandbox_control: SandboxControl):
    offer = sandbox_control.untouched_offers(1)[0]
    request = event("PUT", "/v1/offers/states", body=_batch((offer, SAVE["states"])))
    request["body"] = base64.b64encode(request["body"].encode()).decode()
    request["isBase64Encoded"] = True
    status, _, _ = update_state.call(request)
    assert status == 200
    assert sandbox_control.states(MEMBER)[offer] == {"SAVE": "SAVED"}


def test_unknown_offer_is_not_found_and_audited_as_failed(
    update_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    assert_error(update_state.call(offer_event(str(uuid.uuid4()), SAVE)), 404, "OFFER_NOT_FOUND")
    [item] = deployed.audit_items()
    assert (item["outcome"], item["httpStatus"], item["upstreamStatus"]) == ("FAILED", 404, 404)


# ------------------------------------------------------------------ idempotency


def test_replay_returns_first_answer_without_upstream_call(
    update_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    offer = sandbox_control.untouched_offers(1)[0]
    key = {"idempotency-key": str(uuid.uuid4())}
    first_status, first_headers, first = update_state.call(offer_event(offer, OPT_IN, headers=key))
    second_status, second_headers, second = update_state.call(
        offer_event(offer, OPT_IN, headers=key)
    )

    assert (first_status, second_status) == (200, 200)
    assert second == first
    assert "Idempotent-Replayed" not in first_headers
    assert second_headers["Idempotent-Replayed"] == "true"
    assert sandbox_control.calls()["put"] == 1
    assert len(deployed.audit_items()) == 1


def test_same_key_with_another_body_is_a_conflict(
    update_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    offer = sandbox_control.untouched_offers(1)[0]
    key = {"idempotency-key": str(uuid.uuid4())}
    update_state.call(offer_event(offer, OPT_IN, headers=key))
    answer = update_state.call(offer_event(offer, SAVE, headers=key))
    assert_error(answer, 409, "IDEMPOTENCY_CONFLICT")
    assert sandbox_control.calls()["put"] == 1
    assert sandbox_control.states(MEMBER)[offer] == {"OPT_IN": "OPTED_IN"}
    assert [i["outcome"] for i in deployed.audit_items()] == ["SUCCEEDED", "REJECTED"]


def test_same_key_for_another_collector_is_independent(update_state: Function, sandbox_control):
    offer = sandbox_control.untouched_offers(1)[0]
    key = {"idempotency-key": str(uuid.uuid4())}
    update_state.call(offer_event(offer, SAVE, headers=key))
    status, headers, _ = update_state.call(
        offer_event(offer, SAVE, **machine(OTHER, WRITE, M2M, headers=key))
    )
    assert status == 200
    assert "Idempotent-Replayed" not in headers
    assert sandbox_control.calls()["put"] == 2
    assert sandbox_control.states(OTHER)[offer] == {"SAVE": "SAVED"}


@pytest.fixture
def unhurried_update_state(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> Function:
    """update-state with the template's own upstream timeouts (5 s to read, 8 s in all), not
    the tests' fast ones: they outlast the moment a test holds a call at the sandbox."""
    for name, value in deployed.template.function_environment("UpdateStateFunction").items():
        monkeypatch.setenv(name, value)
    return deployed.load("UpdateStateFunction")


def test_a_repeat_while_the_first_is_in_flight_is_a_conflict(
    unhurried_update_state: Function, sandbox_control: SandboxControl
):
    update_state = unhurried_update_state
    offer = sandbox_control.untouched_offers(1)[0]
    key = str(uuid.uuid4())
    first_id, repeat_id = str(uuid.uuid4()), str(uuid.uuid4())
    sandbox_control.fault("put", "timeout", count=1)  # the first PUT is held until let go
    first: dict = {}

    def call_first() -> None:
        headers = {"idempotency-key": key, "x-correlation-id": first_id}
        first["answer"] = update_state.call(offer_event(offer, SAVE, headers=headers))

    worker = threading.Thread(target=call_first)
    worker.start()
    assert wait_until(lambda: sandbox_control.calls()["put"] == 1)  # the first is held
    headers = {"idempotency-key": key, "x-correlation-id": repeat_id}
    answer = update_state.call(offer_event(offer, SAVE, headers=headers))
    sandbox_control.clear_faults()  # its connection closes unanswered: its outcome unknown
    worker.join()

    body = assert_error(answer, 409, "IDEMPOTENCY_CONFLICT")
    assert "in flight" in body["error"]["message"]
    assert_error(first["answer"], 502, "OUTCOME_UNKNOWN")
    puts = [r for r in sandbox_control.requests() if r["endpoint"] == "put"]
    assert {r["headers"]["x-correlation-id"] for r in puts} == {first_id}  # the repeat's: none


def test_the_in_flight_lock_expires_with_the_invocation(
    update_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    offer = sandbox_control.untouched_offers(1)[0]
    asked_ms = time.time() * 1000
    update_state.call(offer_event(offer, SAVE, headers={"idempotency-key": str(uuid.uuid4())}))
    [record] = deployed.table_items("IdempotencyTable")
    # Set from the invocation's remaining time; without the Lambda context there is none.
    expiry_ms = record["in_progress_expiration"]
    assert asked_ms < expiry_ms <= time.time() * 1000 + update_state.timeout * 1000


def test_a_failed_call_can_be_retried_with_the_same_key(
    update_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    offer = sandbox_control.untouched_offers(1)[0]
    key = {"idempotency-key": str(uuid.uuid4())}
    sandbox_control.fault("put", "status", status=404)  # refused: certainly not applied
    assert_error(update_state.call(offer_event(offer, SAVE, headers=key)), 404, "OFFER_NOT_FOUND")
    sandbox_control.clear_faults()
    status, headers, _ = update_state.call(offer_event(offer, SAVE, headers=key))
    assert status == 200
    assert "Idempotent-Replayed" not in headers
    assert sandbox_control.states(MEMBER)[offer] == {"SAVE": "SAVED"}
    assert [i["outcome"] for i in deployed.audit_items()] == ["FAILED", "SUCCEEDED"]


def test_an_idempotency_key_must_be_a_uuid(update_state: Function, sandbox_control: SandboxControl):
    offer = sandbox_control.untouched_offers(1)[0]
    answer = update_state.call(offer_event(offer, SAVE, headers={"idempotency-key": "abc"}))
    assert_refused(answer, 400, "VALIDATION_ERROR", sandbox_control)


# ------------------------------------------------------------------ write-ahead audit


def test_pending_record_is_written_before_the_upstream_put(
    unhurried_update_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    offer = sandbox_control.untouched_offers(1)[0]
    sandbox_control.fault("put", "timeout", count=1)  # held until let go
    worker = threading.Thread(target=lambda: unhurried_update_state.call(offer_event(offer, SAVE)))
    worker.start()
    assert wait_until(lambda: sandbox_control.calls()["put"] == 1)
    while_held = [i["outcome"] for i in deployed.audit_items()]
    sandbox_control.clear_faults()  # its connection closes unanswered: its outcome unknown
    worker.join()

    assert while_held == ["PENDING"]
    assert [i["outcome"] for i in deployed.audit_items()] == ["UNKNOWN"]


def test_upstream_failure_after_retries_is_audited_as_failed(
    update_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    sandbox_control.fault("put", "status", status=503, retryAfter=0)
    answer = update_state.call(offer_event(sandbox_control.untouched_offers(1)[0], SAVE))
    assert_error(answer, 502, "UPSTREAM_ERROR")
    assert sandbox_control.calls()["put"] == 3  # first try + 2 retries (PUT is idempotent)
    [item] = deployed.audit_items()
    assert (item["outcome"], item["upstreamStatus"], item["errorCode"]) == (
        "FAILED",
        503,
        "UPSTREAM_ERROR",
    )


# ------------------------------------------------------------------ outcomes at the edges


def test_a_put_answered_502_is_sent_once_and_audited_unknown(
    update_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    # A gateway in front of AIR MILES may answer 502 after AIR MILES applied the change.
    sandbox_control.fault("put", "status", status=502, retryAfter=0)
    answer = update_state.call(offer_event(sandbox_control.untouched_offers(1)[0], SAVE))
    body = assert_error(answer, 502, "OUTCOME_UNKNOWN")
    assert body["error"]["message"] == (
        "AIR MILES answered HTTP 502. The change may or may not have been applied: read the "
        "states again and, if the change is not there, send it again with a new "
        "Idempotency-Key."
    )
    assert sandbox_control.calls()["put"] == 1
    [item] = deployed.audit_items()
    assert (item["outcome"], item["httpStatus"], item["upstreamStatus"], item["errorCode"]) == (
        "UNKNOWN",
        502,
        502,
        "OUTCOME_UNKNOWN",
    )


# A PUT sent and its answer lost, stored by AIR MILES all the same: (fault, status).
LOST_ANSWERS: list[tuple[dict[str, str | int], int]] = [
    ({"mode": "timeout"}, 504),  # held unanswered past the read timeout
    ({"mode": "reset"}, 502),  # the connection closed after the request went out
    ({"mode": "drip", "intervalMs": 50}, 504),  # an answer too slow for the budget
]


@pytest.mark.parametrize(
    ("fault", "status"), LOST_ANSWERS, ids=[f["mode"] for f, _ in LOST_ANSWERS]
)
def test_a_change_of_unknown_outcome_keeps_its_key_and_a_repeat_is_replayed(
    update_state: Function,
    sandbox_control: SandboxControl,
    deployed: Deployed,
    fault: dict,
    status: int,
):
    offer = sandbox_control.untouched_offers(1)[0]
    key = {"idempotency-key": str(uuid.uuid4())}
    sandbox_control.fault("put", **fault, applied=True, count=1)
    first = update_state.call(offer_event(offer, SAVE, headers=key))
    first_body = assert_error(first, status, "OUTCOME_UNKNOWN")
    assert "Idempotent-Replayed" not in first[1]
    assert sandbox_control.calls()["put"] == 1

    repeat = update_state.call(offer_event(offer, SAVE, headers=key))

    body = assert_error(repeat, status, "OUTCOME_UNKNOWN")
    assert body["error"]["message"] == first_body["error"]["message"]
    assert repeat[1]["Idempotent-Replayed"] == "true"
    assert repeat[1]["X-Correlation-Id"] == body["correlationId"]  # the repeat's own
    assert sandbox_control.calls()["put"] == 1  # nothing more reached AIR MILES
    assert [i["outcome"] for i in deployed.audit_items()] == ["UNKNOWN"]  # the replay: none
    # AIR MILES did apply it: the partner reads the states again, and finds the change there.
    assert sandbox_control.states(MEMBER)[offer] == {"SAVE": "SAVED"}


def test_after_an_unknown_outcome_a_change_not_applied_is_sent_again_with_a_new_key(
    update_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    offer = sandbox_control.untouched_offers(1)[0]
    sandbox_control.fault("put", "reset", applied=False, count=1)
    first = update_state.call(offer_event(offer, SAVE, headers={"idempotency-key": KEY}))
    assert_error(first, 502, "OUTCOME_UNKNOWN")
    assert offer not in sandbox_control.states(MEMBER)  # read again: not there
    status, headers, _ = update_state.call(
        offer_event(offer, SAVE, headers={"idempotency-key": str(uuid.uuid4())})
    )
    assert status == 200
    assert "Idempotent-Replayed" not in headers
    assert sandbox_control.calls()["put"] == 2
    assert sandbox_control.states(MEMBER)[offer] == {"SAVE": "SAVED"}
    assert [i["outcome"] for i in deployed.audit_items()] == ["UNKNOWN", "SUCCEEDED"]


def test_an_applied_change_is_answered_as_applied_when_its_idempotency_record_is_lost(
    update_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    offer = sandbox_control.untouched_offers(1)[0]
    key = {"idempotency-key": str(uuid.uuid4())}
    # Powertools saves the success with UpdateItem, after AIR MILES applied the change.
    refuse(update_state.module.service.dynamodb, "UpdateItem", deployed.refs["IdempotencyTable"])

    status, headers, body = update_state.call(offer_event(offer, SAVE, headers=key))

    assert status == 200
    assert [c["offerId"] for c in body["stateChanges"]] == [offer]
    assert "Idempotent-Replayed" not in headers
    assert sandbox_control.states(MEMBER)[offer] == {"SAVE": "SAVED"}
    [item] = deployed.audit_items()
    assert (item["outcome"], item["idempotencyRecord"]) == ("SUCCEEDED", "NOT_SAVED")

    # The key cannot replay: while the first invocation's lock lasts a repeat is in flight...
    repeat = update_state.call(offer_event(offer, SAVE, headers=key))
    assert_error(repeat, 409, "IDEMPOTENCY_CONFLICT")
    # ... and once it has expired, the repeat sends the same change again.
    _expire_idempotency_locks(deployed)
    status, headers, _ = update_state.call(offer_event(offer, SAVE, headers=key))
    assert status == 200
    assert "Idempotent-Replayed" not in headers
    assert sandbox_control.calls()["put"] == 2


def _expire_idempotency_locks(deployed: Deployed) -> None:
    """As if the invocations holding the idempotency table's in-progress locks had ended."""
    dynamodb = boto3.session.Session().client("dynamodb")  # the function's client is faulty
    table = deployed.refs["IdempotencyTable"]
    past = str(int(time.time() * 1000) - 1000)
    for item in dynamodb.scan(TableName=table)["Items"]:
        dynamodb.update_item(
            TableName=table,
            Key={"id": item["id"]},
            UpdateExpression="SET in_progress_expiration = :past",
            ExpressionAttributeValues={":past": {"N": past}},
        )


def test_a_failed_write_keeps_its_own_error_when_its_idempotency_record_is_not_deleted(
    update_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    refuse(update_state.module.service.dynamodb, "DeleteItem", deployed.refs["IdempotencyTable"])
    sandbox_control.fault("put", "status", status=404)  # refused: not applied
    offer = sandbox_control.untouched_offers(1)[0]
    answer = update_state.call(offer_event(offer, SAVE, headers={"idempotency-key": KEY}))
    assert_error(answer, 404, "OFFER_NOT_FOUND")  # the answer the audit records
    [item] = deployed.audit_items()
    assert (item["outcome"], item["upstreamStatus"]) == ("FAILED", 404)


def test_a_pending_item_stored_by_a_retried_put_item_is_recognised_as_ours(
    update_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    stored_by_an_earlier_attempt(update_state.module.service.dynamodb, deployed.refs["AuditTable"])
    offer = sandbox_control.untouched_offers(1)[0]
    status, _, _ = update_state.call(offer_event(offer, SAVE))
    assert status == 200
    assert sandbox_control.calls()["put"] == 1
    assert [i["outcome"] for i in deployed.audit_items()] == ["SUCCEEDED"]


@pytest.mark.parametrize("headers", [{}, {"idempotency-key": KEY}], ids=["no key", "key"])
def test_a_write_ahead_item_stored_by_a_lost_attempt_is_settled_when_the_put_is_not_sent(
    update_state: Function,
    sandbox_control: SandboxControl,
    deployed: Deployed,
    reconcile_pending: Function,
    headers: dict[str, str],
):
    stored_then_answers_lost(update_state.module.service.dynamodb, deployed.refs["AuditTable"])
    offer = sandbox_control.untouched_offers(1)[0]
    answer = update_state.call(offer_event(offer, SAVE, headers=headers))
    assert_error(answer, 503, "DEPENDENCY_UNAVAILABLE")
    assert sandbox_control.calls()["put"] == 0
    # The item the first attempt stored says what happened: not sent, as the partner was told.
    [item] = deployed.audit_items()
    assert (item["outcome"], item["httpStatus"], item["errorCode"]) == (
        "FAILED",
        503,
        "DEPENDENCY_UNAVAILABLE",
    )
    assert "pending" not in item
    # So the reconciler, however late it runs, has nothing to record UNKNOWN.
    reconciler = reconcile_pending.module.reconciler
    reconciler._clock = lambda: datetime.now(UTC) + timedelta(hours=1)
    assert reconciler.run().reconciled == 0
    assert [i["outcome"] for i in deployed.audit_items()] == ["FAILED"]
