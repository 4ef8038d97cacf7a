"""The code side of least privilege: every AWS call each function makes, over every path
(reads, writes, replays, conflicts, failures, the token read, refused, asked for and fetched
as a fallback; the refresher's runs), is exactly the set its IAM policy (and the token key's
policy) grants; each audit record's update stays inside the attributes its policy's condition
allows; and each call on the token names its one item and its encryption context, as their
conditions require."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from typing import Any

import boto3
import pytest

from offer_state.errors import UpstreamError
from offer_state.token_store import ITEM_KEY
from tests.support.aws_faults import stored_by_an_earlier_attempt
from tests.support.functions import EVENTS_DIR, SAVE, Function, event, offer_event
from tests.support.inprocess import Deployed, InProcessRefresher
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
    _the_token_refused_while_the_refresher_is_down(refresher, get_state, sandbox_control)

    assert _as_arns(aws_calls, deployed) == permissions(deployed.template, "GetStateFunction")
    _assert_token_calls_within_their_conditions(aws_calls, deployed)


def test_update_state_uses_exactly_its_permissions(
    refresher: InProcessRefresher,
    aws_calls,
    update_state: Function,
    deployed: Deployed,
    sandbox_control: SandboxControl,
    monkeypatch,
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
    _the_token_refused_while_the_refresher_is_down(refresher, update_state, sandbox_control)

    assert _as_arns(aws_calls, deployed) == permissions(deployed.template, "UpdateStateFunction")
    _assert_audit_updates_within_their_condition(aws_calls, deployed)
    _assert_token_calls_within_their_conditions(aws_calls, deployed)


def test_reconcile_pending_uses_exactly_its_permissions(
    aws_calls, reconcile_pending: Function, deployed: Deployed
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


def test_token_refresher_uses_exactly_its_permissions(
    aws_calls, deployed: Deployed, sandbox_control: SandboxControl, monkeypatch
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
    _assert_token_calls_within_their_conditions(aws_calls, deployed, "kms:Encrypt")


def _the_token_refused_while_the_refresher_is_down(
    refresher: InProcessRefresher, function: Function, sandbox_control: SandboxControl
) -> None:
    """AIR MILES refuses the stored token once, and the refresher cannot run: the function
    reads the item again (strongly consistent), asks the refresher, and when no token comes,
    fetches its own with the credentials it reads from the secret."""
    refresher.down = True
    endpoint = "count" if function.logical_id == "GetStateFunction" else "put"
    sandbox_control.fault(endpoint, "status", status=401, count=1)
    if endpoint == "count":
        answer = function.call(event("GET", "/v1/offers/states/count"))
    else:
        answer = function.call(offer_event(sandbox_control.untouched_offers(4)[3], SAVE))
    assert answer[0] == 200
    assert sandbox_control.calls()["token"] == 2  # the refresher's, and the fallback
    assert refresher.outcomes()[-1] == "RuntimeError"


def _assert_token_calls_within_their_conditions(
    aws_calls: list[tuple[str, dict[str, Any]]],
    deployed: Deployed,
    crypto_action: str = "kms:Decrypt",
) -> None:
    """Every call on the token table names its one item (`dynamodb:LeadingKeys`), and every
    use of the token key the encryption context its key policy requires."""
    table = deployed.refs["TokenTable"]
    items = [params for _, params in aws_calls if params.get("TableName") == table]
    crypto = [params for action, params in aws_calls if action == crypto_action]
    assert items and crypto
    assert all(params["Key"] == {"pk": {"S": ITEM_KEY}} for params in items)
    context = {"tokenTable": table, "item": ITEM_KEY}
    assert all(params["EncryptionContext"] == context for params in crypto)


# Words of DynamoDB's expression language: anything else bare in an expression is an attribute.
_EXPRESSION_WORDS = {"SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "IN", "BETWEEN"}


def _assert_audit_updates_within_their_condition(
    aws_calls: list[tuple[str, dict[str, Any]]], deployed: Deployed
) -> None:
    """Every UpdateItem on the audit table names only attributes the policy's
    `dynamodb:Attributes` lists, and asks nothing back (`dynamodb:ReturnValues`)."""
    statements = deployed.template.resolve(
        deployed.template.function_properties("UpdateStateFunction")["Policies"]
    )[0]["Statement"]
    [finish] = [s for s in statements if s.get("Sid") == "FinishAuditRecords"]
    allowed = set(finish["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"])
    assert finish["Condition"]["StringEqualsIfExists"]["dynamodb:ReturnValues"] == "NONE"
    updates = [
        params
        for action, params in aws_calls
        if action == "dynamodb:UpdateItem" and params["TableName"] == deployed.refs["AuditTable"]
    ]
    assert updates, "the paths above finish PENDING records"
    for params in updates:
        expressions = " ".join(
            params.get(k, "") for k in ("UpdateExpression", "ConditionExpression")
        )
        bare = set(re.findall(r"(?<![#:\w])[A-Za-z_]\w*\b(?!\s*\()", expressions))
        named = set(params.get("ExpressionAttributeNames", {}).values())
        assert named | set(params["Key"]) | (bare - _EXPRESSION_WORDS) <= allowed
        assert params.get("ReturnValues", "NONE") == "NONE"
