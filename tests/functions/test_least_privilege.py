"""The code side of least privilege: every AWS call each function makes, over every path
(reads, writes, replays, conflicts, failures), is exactly the set its IAM policy grants."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta

import boto3
import pytest

from tests.support.aws_faults import stored_by_an_earlier_attempt
from tests.support.functions import EVENTS_DIR, SAVE, Function, event, offer_event
from tests.support.inprocess import Deployed, fresh_boto3_session
from tests.support.pending import begin_change, writer_at
from tests.support.permissions import permissions
from tests.support.sandbox_control import SandboxControl


@pytest.fixture
def calls(deployed: Deployed) -> Iterator[list[tuple[str, str]]]:
    """(IAM action, resource) of every AWS call made by clients created from now on (after
    the stack's resources exist)."""
    fresh_boto3_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    recorded: list[tuple[str, str]] = []

    def record(model, params, **_kwargs) -> None:
        action = f"{model.service_model.signing_name}:{model.name}"
        resource = params.get("TableName") or params.get("SecretId") or "?"
        if "IndexName" in params:  # IAM names a table's index as its own resource
            resource += f"/index/{params['IndexName']}"
        recorded.append((action, resource))

    session.events.register("before-parameter-build.*.*", record)
    yield recorded
    fresh_boto3_session()


def _as_arns(used: list[tuple[str, str]], deployed: Deployed) -> set[tuple[str, str]]:
    template = deployed.template
    table_arns = {
        deployed.refs[t]: template.resolve({"Fn::GetAtt": [t, "Arn"]})
        for t in ("AuditTable", "IdempotencyTable")
    }
    arns = set()
    for action, resource in used:
        table, index = resource.partition("/index/")[::2]
        arn = table_arns.get(table, table)
        arns.add((action, f"{arn}/index/{index}" if index else arn))
    return arns


def test_get_state_uses_exactly_its_permissions(
    calls, get_state: Function, deployed: Deployed, sandbox_control: SandboxControl
):
    offers = sandbox_control.untouched_offers(2)
    get_state.call(event("GET", "/health"))
    get_state.call(event("GET", "/v1/offers/states", query=[("offerId", o) for o in offers]))
    get_state.call(event("GET", "/v1/offers/states/find"))
    get_state.call(event("GET", "/v1/offers/states/count"))
    get_state.call(event("GET", "/v1/offers/states", query=[("offerId", "bad")]))  # rejected
    sandbox_control.fault("count", "status", status=500)
    get_state.call(event("GET", "/v1/offers/states/count"))  # failed upstream
    sandbox_control.clear_faults()
    # A retried PutItem that the first attempt had stored: the item is read back.
    stored_by_an_earlier_attempt(get_state.module.service.dynamodb, deployed.refs["AuditTable"])
    get_state.call(event("GET", "/v1/offers/states/count"))

    assert _as_arns(calls, deployed) == permissions(deployed.template, "GetStateFunction")


def test_update_state_uses_exactly_its_permissions(
    calls, update_state: Function, deployed: Deployed, sandbox_control: SandboxControl, monkeypatch
):
    from aws_lambda_powertools.utilities.idempotency.persistence.dynamodb import (
        DynamoDBPersistenceLayer,
    )

    first, second, third = sandbox_control.untouched_offers(3)
    key = {"idempotency-key": str(uuid.uuid4())}
    update_state.call(offer_event(first, SAVE))  # no key
    update_state.call(offer_event(second, SAVE, headers=key))  # first with a key
    update_state.call(offer_event(second, SAVE, headers=key))  # replay
    update_state.call(
        offer_event(second, {"states": [{"name": "OPT_IN", "value": "OPTED_IN"}]}, headers=key)
    )
    sandbox_control.fault("put", "status", status=500)
    update_state.call(offer_event(third, SAVE, headers={"idempotency-key": str(uuid.uuid4())}))
    sandbox_control.clear_faults()
    # A runtime whose boto3 cannot return the old item on a failed condition reads it instead.
    monkeypatch.setattr(
        DynamoDBPersistenceLayer,
        "boto3_supports_condition_check_failure",
        staticmethod(lambda _v: False),
    )
    writes = update_state.module.writes
    writes.__dict__.pop("_idempotency", None)
    update_state.call(offer_event(second, SAVE, headers=key))
    # A retried PutItem that the first attempt had stored: the item is read back.
    stored_by_an_earlier_attempt(update_state.module.service.dynamodb, deployed.refs["AuditTable"])
    update_state.call(offer_event(first, SAVE))

    assert _as_arns(calls, deployed) == permissions(deployed.template, "UpdateStateFunction")


def test_reconcile_pending_uses_exactly_its_permissions(
    calls, reconcile_pending: Function, deployed: Deployed
):
    table = deployed.refs["AuditTable"]
    begin_change(writer_at(boto3.client("dynamodb"), table, timedelta(days=1)))
    calls.clear()  # the test's own write
    scheduled = json.loads((EVENTS_DIR / "scheduled_reconcile.json").read_text())

    # (An update whose condition fails, for an item finished meanwhile, is the same call.)
    assert reconcile_pending.invoke(scheduled)["reconciled"] == 1
    assert reconcile_pending.invoke(scheduled)["reconciled"] == 0

    assert _as_arns(calls, deployed) == permissions(deployed.template, "ReconcilePendingFunction")
