"""reconcile-pending: audit items left PENDING past update-state's Timeout (plus the margin)
become UNKNOWN, found through the sparse index PendingIndex; nothing else is touched."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import timedelta
from typing import Any

import boto3
import pytest

from offer_state.audit import (
    PENDING_ATTRIBUTE,
    PENDING_INDEX,
    Action,
    AuditContext,
    AuditEntry,
    AuditWriter,
    Outcome,
    PendingRecord,
)
from offer_state.identity import Identity
from offer_state.reconcile import MARGIN_SECONDS, RECONCILER_ATTRIBUTES, ReconcilerSettings
from tests.support.context import lambda_context
from tests.support.functions import EVENTS_DIR, MEMBER, Function
from tests.support.inprocess import Deployed
from tests.support.metrics import emitted
from tests.support.pending import begin_change, writer_at

SCHEDULED = json.loads((EVENTS_DIR / "scheduled_reconcile.json").read_text())
SLACK = timedelta(seconds=5)  # either side of the threshold: far from it for a test's runtime


def test_the_threshold_is_the_write_timeout_plus_the_margin_and_is_required():
    settings = ReconcilerSettings.from_env(
        {"AUDIT_TABLE_NAME": "audit", "WRITE_FUNCTION_TIMEOUT": "15"}
    )
    assert settings.stale_after == timedelta(seconds=15 + MARGIN_SECONDS)
    with pytest.raises(ValueError, match="write_timeout_seconds"):
        ReconcilerSettings.from_env({"AUDIT_TABLE_NAME": "audit"})


def _stale_after(deployed: Deployed) -> timedelta:
    """The reconciler's threshold: update-state's Timeout, as the template gives it to the
    reconciler, plus the margin."""
    timeout = int(
        deployed.function_environment("ReconcilePendingFunction")["WRITE_FUNCTION_TIMEOUT"]
    )
    return timedelta(seconds=timeout + MARGIN_SECONDS)


def _writer(deployed: Deployed, age: timedelta = timedelta(0)) -> AuditWriter:
    """An audit writer whose clock is `age` behind the real one."""
    return writer_at(boto3.client("dynamodb"), deployed.refs["AuditTable"], age)


def _begin(deployed: Deployed, age: timedelta) -> PendingRecord:
    """A PENDING item, as update-state writes before calling AIR MILES, `age` old."""
    return begin_change(_writer(deployed, age))[0]


def _item(deployed: Deployed, record: PendingRecord) -> dict[str, Any]:
    return deployed.table("AuditTable").get_item(Key={"pk": record.pk, "sk": record.sk})["Item"]


def _in_pending_index(deployed: Deployed) -> set[str]:
    """The sort keys of every item the sparse index holds."""
    found = deployed.table("AuditTable").query(
        IndexName=PENDING_INDEX,
        KeyConditionExpression="#pending = :pending",
        ExpressionAttributeNames={"#pending": PENDING_ATTRIBUTE},
        ExpressionAttributeValues={":pending": "PENDING"},
    )
    return {item["sk"] for item in found["Items"]}


def _reconciled_metric(capsys: pytest.CaptureFixture[str]) -> list[tuple[dict[str, str], float]]:
    """What the function emitted of `StalePendingReconciled` so far."""
    out, err = capsys.readouterr()
    sys.stdout.write(out)  # written again: still shown, and still seen by the leak check
    sys.stderr.write(err)
    return emitted(out, "StalePendingReconciled")


def test_a_stale_pending_item_becomes_unknown_and_is_counted(
    reconcile_pending: Function, deployed: Deployed, capsys
):
    stale = _begin(deployed, _stale_after(deployed) + SLACK)

    result = reconcile_pending.invoke(SCHEDULED)

    assert result == {"reconciled": 1, "finishedMeanwhile": 0, "complete": True}
    item = _item(deployed, stale)
    assert item["outcome"] == Outcome.UNKNOWN
    assert item["errorCode"] == "OUTCOME_NOT_RECORDED"
    assert item["reconciledAt"] > item["createdAt"]
    assert PENDING_ATTRIBUTE not in item
    assert _in_pending_index(deployed) == set()
    assert _reconciled_metric(capsys) == [({"service": "offer-state-gateway"}, 1.0)]


def test_a_pending_item_younger_than_the_threshold_stays_pending(
    reconcile_pending: Function, deployed: Deployed, capsys
):
    young = _begin(deployed, _stale_after(deployed) - SLACK)

    result = reconcile_pending.invoke(SCHEDULED)

    assert result["reconciled"] == 0
    item = _item(deployed, young)
    assert item["outcome"] == Outcome.PENDING
    assert "errorCode" not in item
    assert _in_pending_index(deployed) == {young.sk}
    assert _reconciled_metric(capsys) == [({"service": "offer-state-gateway"}, 0.0)]


def test_a_finished_item_is_out_of_the_index_and_untouched(
    reconcile_pending: Function, deployed: Deployed
):
    old = _stale_after(deployed) * 2
    finished = _begin(deployed, old)
    assert _in_pending_index(deployed) == {finished.sk}  # begin puts it in
    _writer(deployed, old).finish(finished, Outcome.SUCCEEDED, http_status=200, upstream_status=204)
    before = _item(deployed, finished)
    assert PENDING_ATTRIBUTE not in before
    assert _in_pending_index(deployed) == set()  # finish takes it out

    result = reconcile_pending.invoke(SCHEDULED)

    assert result["reconciled"] == 0
    assert _item(deployed, finished) == before


def test_items_without_the_flag_never_enter_the_index(deployed: Deployed):
    writer = _writer(deployed, _stale_after(deployed) * 2)
    identity = Identity(MEMBER, "member", "member-1")
    for outcome in (Outcome.SUCCEEDED, Outcome.FAILED, Outcome.REJECTED):
        context = AuditContext(
            route="GET /v1/offers/states/count",
            request_id=str(uuid.uuid4()),
            correlation_id=str(uuid.uuid4()),
            origin_client="external:test-partner:web",
        )
        writer.record(identity, context, AuditEntry(Action.COUNT_STATES), outcome, http_status=200)
    pending = _begin(deployed, timedelta(0))

    assert len(deployed.audit_items()) == 4
    assert _in_pending_index(deployed) == {pending.sk}


def test_an_item_finished_between_the_query_and_the_update_keeps_its_outcome(
    reconcile_pending: Function, deployed: Deployed, capsys
):
    old = _stale_after(deployed) + SLACK
    late = _begin(deployed, old)
    finished: list[str] = []

    def finish_first(**_kwargs: Any) -> None:
        # The invocation that wrote it records its outcome just before the reconciler does.
        if not finished:
            _writer(deployed, old).finish(late, Outcome.SUCCEEDED, http_status=200)
            finished.append(late.sk)

    reconcile_pending.module.dynamodb.meta.events.register(
        "before-call.dynamodb.UpdateItem", finish_first
    )

    result = reconcile_pending.invoke(SCHEDULED)

    assert finished == [late.sk]  # the update did come after it
    assert result == {"reconciled": 0, "finishedMeanwhile": 1, "complete": True}
    item = _item(deployed, late)
    assert item["outcome"] == Outcome.SUCCEEDED
    assert "errorCode" not in item
    assert "reconciledAt" not in item
    assert _reconciled_metric(capsys) == [({"service": "offer-state-gateway"}, 0.0)]


def test_a_run_short_of_time_leaves_the_rest_to_the_next(
    reconcile_pending: Function, deployed: Deployed
):
    stale = _begin(deployed, _stale_after(deployed) + SLACK)
    short = lambda_context("ReconcilePendingFunction", 256, timeout_seconds=1)

    result = reconcile_pending.module.lambda_handler(SCHEDULED, short)

    assert result == {"reconciled": 0, "finishedMeanwhile": 0, "complete": False}
    assert _item(deployed, stale)["outcome"] == Outcome.PENDING
    assert reconcile_pending.invoke(SCHEDULED)["reconciled"] == 1  # the next run


def test_every_page_of_stale_items_is_reconciled(reconcile_pending: Function, deployed: Deployed):
    stale = [_begin(deployed, _stale_after(deployed) + SLACK * (i + 1)) for i in range(5)]
    reconcile_pending.module.reconciler._page_size = 2

    assert reconcile_pending.invoke(SCHEDULED)["reconciled"] == 5
    assert {_item(deployed, record)["outcome"] for record in stale} == {Outcome.UNKNOWN}


def test_the_update_names_only_the_key_and_the_outcome_fields(
    reconcile_pending: Function, deployed: Deployed
):
    # template.yaml's IAM condition on the reconciler's UpdateItem lists the same names
    # (tests/template/test_template.py): a name added here must be added there.
    _begin(deployed, _stale_after(deployed) + SLACK)
    named: list[set[str]] = []

    def record(params: dict[str, Any], **_kwargs: Any) -> None:
        named.append(set(params["ExpressionAttributeNames"].values()) | set(params["Key"]))

    reconcile_pending.module.dynamodb.meta.events.register(
        "provide-client-params.dynamodb.UpdateItem", record
    )
    reconcile_pending.invoke(SCHEDULED)

    assert named == [{"pk", "sk", *RECONCILER_ATTRIBUTES}]
