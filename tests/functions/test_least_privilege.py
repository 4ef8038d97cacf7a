"""The code side of least privilege: every AWS call each function makes, over every path
(reads, writes, replays, conflicts, failures, the token read, refused, asked for and fetched
as a fallback; the refresher's runs), is exactly the set its IAM policy (and the token key's
policy) grants; and each call, decided by a real IAM evaluator (iam-simulate, with the context
keys the call carries) against the roles' policies as SAM generates them and the key policies,
is allowed to its function, denied to the other roles and AuditReaderPolicy unless the template
shares it, and denied outside its conditions (tests/support/iam.py)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import boto3
import pytest

from offer_state.errors import UpstreamError
from tests.support.aws_faults import answers_lost, stored_by_an_earlier_attempt
from tests.support.functions import EVENTS_DIR, SAVE, Function, event, offer_event
from tests.support.iam import Evaluator, assert_evaluated
from tests.support.inprocess import PATIENT_TIMEOUT, Deployed, InProcessRefresher
from tests.support.pending import begin_change, writer_at
from tests.support.permissions import as_arns, permissions
from tests.support.sandbox_control import SandboxControl


def _as_arns(used: list[tuple[str, dict[str, Any]]], deployed: Deployed) -> set[tuple[str, str]]:
    return as_arns(used, deployed.template, deployed.refs)


def test_get_state_uses_exactly_its_permissions(
    refresher: InProcessRefresher,
    aws_calls,
    get_state: Function,
    deployed: Deployed,
    sandbox_control: SandboxControl,
    monkeypatch: pytest.MonkeyPatch,
    iam: Evaluator,
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
    _the_token_refused_while_the_refresher_is_down(
        refresher, get_state, deployed, sandbox_control, monkeypatch
    )

    assert _as_arns(aws_calls, deployed) == permissions(deployed.template, "GetStateFunction")
    assert_evaluated(aws_calls, deployed.template, iam, "GetStateFunction")


def test_update_state_uses_exactly_its_permissions(
    refresher: InProcessRefresher,
    aws_calls,
    update_state: Function,
    deployed: Deployed,
    sandbox_control: SandboxControl,
    monkeypatch,
    iam: Evaluator,
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
    sandbox_control.fault("put", "status", status=404)  # refused: its record is deleted
    update_state.call(offer_event(third, SAVE, headers={"idempotency-key": str(uuid.uuid4())}))
    sandbox_control.fault("put", "status", status=500)  # outcome unknown: its record is kept
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
    _the_token_refused_while_the_refresher_is_down(
        refresher, update_state, deployed, sandbox_control, monkeypatch
    )
    # A retried PutItem whose every answer is lost: the item is settled FAILED, the PUT not
    # sent. Last: from here on no PutItem on the audit table gets its answer.
    answers_lost(update_state.module.service.dynamodb, "PutItem", deployed.refs["AuditTable"])
    update_state.call(offer_event(first, SAVE))

    assert _as_arns(aws_calls, deployed) == permissions(deployed.template, "UpdateStateFunction")
    assert_evaluated(aws_calls, deployed.template, iam, "UpdateStateFunction")


def test_reconcile_pending_uses_exactly_its_permissions(
    aws_calls, reconcile_pending: Function, deployed: Deployed, iam: Evaluator
):
    table = deployed.refs["AuditTable"]
    begin_change(writer_at(boto3.client("dynamodb"), table, timedelta(days=1)))
    aws_calls.clear()  # the test's own write
    scheduled = json.loads((EVENTS_DIR / "scheduled_reconcile.json").read_text())

    # (An update whose condition fails, for an item finished meanwhile, is the same call.)
    assert reconcile_pending.invoke(scheduled)["reconciled"] == 1
    assert reconcile_pending.invoke(scheduled)["reconciled"] == 0

    assert _as_arns(aws_calls, deployed) == permissions(
        deployed.template, "ReconcilePendingFunction"
    )
    assert_evaluated(aws_calls, deployed.template, iam, "ReconcilePendingFunction")


def test_token_refresher_uses_exactly_its_permissions(
    aws_calls, deployed: Deployed, sandbox_control: SandboxControl, monkeypatch, iam: Evaluator
):
    refresher = deployed.start("TokenRefresherFunction", monkeypatch)
    scheduled = json.loads((EVENTS_DIR / "scheduled_token_refresh.json").read_text())
    assert refresher.invoke(scheduled)["outcome"] == "refreshed"  # none stored: fetched
    assert refresher.invoke(scheduled)["outcome"] == "fresh"  # read only
    refused = deployed.token_item()["tokenId"]["S"]
    sandbox_control.fault("token", "status", status=500)
    with pytest.raises(UpstreamError):  # claimed, the fetch failed: the claim released
        refresher.invoke({"refusedTokenId": refused})
    assert "claimOwner" not in deployed.token_item()

    assert _as_arns(aws_calls, deployed) == permissions(deployed.template, "TokenRefresherFunction")
    assert_evaluated(aws_calls, deployed.template, iam, "TokenRefresherFunction")


def _the_token_refused_while_the_refresher_is_down(
    refresher: InProcessRefresher,
    function: Function,
    deployed: Deployed,
    sandbox_control: SandboxControl,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """AIR MILES refuses the stored token once, and the refresher cannot run: the function
    reads the item again (strongly consistent), asks the refresher, and when no token comes,
    fetches its own with the credentials it reads from the secret. In an environment patient
    with AIR MILES, as deployed: it waits half its budget for the refresher, and what comes
    after (its first Secrets Manager client, the secret, a token, the call) must fit in the
    rest on a busy machine, which the tests' quick 3 s budget need not leave."""
    refresher.down = True
    monkeypatch.setenv("AIRMILES_TOTAL_BUDGET", "12")
    patient = deployed.load(function.logical_id)
    endpoint = "count" if function.logical_id == "GetStateFunction" else "put"
    sandbox_control.fault(endpoint, "status", status=401, count=1)
    if endpoint == "count":
        answer = patient.call(event("GET", "/v1/offers/states/count"), timeout=PATIENT_TIMEOUT)
    else:
        offer = sandbox_control.untouched_offers(4)[3]
        answer = patient.call(offer_event(offer, SAVE), timeout=PATIENT_TIMEOUT)
    assert answer[0] == 200
    assert sandbox_control.calls()["token"] == 2  # the refresher's, and the fallback
    assert refresher.outcomes()[-1] == "RuntimeError"
