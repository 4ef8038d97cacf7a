"""Secrets Manager, DynamoDB and KMS failing: 503 DEPENDENCY_UNAVAILABLE, and never a PUT to
AIR MILES that the audit trail does not know about."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import botocore.client
import pytest
from botocore.exceptions import EndpointConnectionError

from local.sandbox import AUDIENCE, CLIENT_ID, CLIENT_SECRET
from tests.support import leaks
from tests.support.aws_faults import error_answer
from tests.support.functions import MEMBER, SAVE, Function, assert_error, event, offer_event
from tests.support.inprocess import Deployed, fresh_boto3_session
from tests.support.sandbox_control import SandboxControl


@pytest.fixture
def unreachable(aws: None) -> Iterator[Callable[[str], None]]:
    """`unreachable("dynamodb.PutItem")`: that operation fails as if the endpoint were down,
    for every client created afterwards (the functions create theirs on first use)."""
    fresh_boto3_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None

    def block(operation: str) -> None:
        def refuse(**_kwargs: object) -> None:
            raise EndpointConnectionError(endpoint_url=f"https://{operation}.invalid")

        session.events.register_first(f"before-send.{operation}", refuse)

    yield block
    fresh_boto3_session()


@pytest.fixture
def answered(aws: None) -> Iterator[Callable[..., None]]:
    """`answered("kms.GenerateMac", "ThrottlingException")`: that operation (on `table`, when
    given) is answered with that AWS error code, for every client created afterwards."""
    fresh_boto3_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None

    def answer(operation: str, code: str, table: str | None = None) -> None:
        def refuse(params: dict[str, Any], **_: Any) -> Any:
            if table is None or json.loads(params.get("body") or b"{}").get("TableName") == table:
                return error_answer(code)
            return None

        session.events.register_first(f"before-call.{operation}", refuse)

    yield answer
    fresh_boto3_session()


# (what fails, the AWS error code, the answer's message): each says what happened.
SAYS_WHAT_HAPPENED = [
    (
        "kms.GenerateMac",
        "ThrottlingException",
        "The pseudonym key could not be used: KMS is throttling the gateway's calls.",
    ),
    (
        "kms.GenerateMac",
        "AccessDeniedException",
        "The pseudonym key could not be used: KMS denied the gateway access to the key.",
    ),
    (
        "kms.GenerateMac",
        "DisabledException",
        "The pseudonym key could not be used: the key is disabled or pending deletion in KMS.",
    ),
    (
        "secrets-manager.GetSecretValue",
        "AccessDeniedException",
        "The gateway's secret could not be read: Secrets Manager denied the gateway access to "
        "the secret.",
    ),
    (
        "AuditTable",
        "ProvisionedThroughputExceededException",
        "The audit trail could not be written: DynamoDB is throttling the gateway's calls.",
    ),
    (
        "IdempotencyTable",
        "ThrottlingException",
        "The idempotency store could not be used: DynamoDB is throttling the gateway's calls.",
    ),
]
DEPENDENCY_OF = {
    "kms.GenerateMac": "kms:GenerateMac",
    "secrets-manager.GetSecretValue": "secretsmanager:GetSecretValue",
    "AuditTable": "dynamodb:AuditTable",
    "IdempotencyTable": "dynamodb:IdempotencyTable",
}


@pytest.mark.parametrize(
    ("failing", "code", "message"),
    SAYS_WHAT_HAPPENED,
    ids=[f"{failing} {code}" for failing, code, _ in SAYS_WHAT_HAPPENED],
)
def test_a_dependency_failure_says_what_happened_and_its_log_line_names_the_aws_error(
    answered,
    update_state: Function,
    deployed: Deployed,
    sandbox_control: SandboxControl,
    failing: str,
    code: str,
    message: str,
):
    if failing in deployed.refs:  # a table: its PutItem (the write-ahead item, or the lock)
        answered("dynamodb.PutItem", code, deployed.refs[failing])
    else:
        answered(failing, code)
    headers = {"idempotency-key": str(uuid.uuid4())}
    answer = update_state.call(
        offer_event(sandbox_control.untouched_offers(1)[0], SAVE, headers=headers)
    )
    body = assert_error(answer, 503, "DEPENDENCY_UNAVAILABLE")
    assert body["error"]["message"] == message
    assert sandbox_control.calls()["put"] == 0
    [line] = leaks.log_lines("request failed")
    assert (line["dependency"], line["awsError"]) == (DEPENDENCY_OF[failing], code)


@pytest.mark.parametrize(
    "secret",
    [
        "not json",
        json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),  # fields missing
        json.dumps(["a", "list"]),
    ],
)
def test_a_malformed_secret_is_a_dependency_failure(
    get_state: Function, deployed: Deployed, sandbox_control: SandboxControl, secret: str
):
    deployed.put_secret(secret)
    answer = get_state.call(event("GET", "/v1/offers/states/count"))
    body = assert_error(answer, 503, "DEPENDENCY_UNAVAILABLE")
    assert sandbox_control.calls()["count"] == 0
    assert CLIENT_SECRET not in json.dumps(body)


def test_a_missing_secret_is_a_dependency_failure(
    update_state: Function, deployed: Deployed, sandbox_control: SandboxControl
):
    boto3.client("secretsmanager").delete_secret(
        SecretId=deployed.refs["AirMilesSecret"], ForceDeleteWithoutRecovery=True
    )
    answer = update_state.call(offer_event(sandbox_control.untouched_offers(1)[0], SAVE))
    assert_error(answer, 503, "DEPENDENCY_UNAVAILABLE")
    assert sandbox_control.calls()["put"] == 0


def test_secrets_manager_unreachable_is_a_dependency_failure(
    unreachable, get_state: Function, sandbox_control: SandboxControl
):
    unreachable("secrets-manager.GetSecretValue")
    answer = get_state.call(event("GET", "/v1/offers/states/count"))
    assert_error(answer, 503, "DEPENDENCY_UNAVAILABLE")
    assert sandbox_control.calls()["count"] == 0


def test_audit_table_unreachable_means_no_put_upstream(
    unreachable, update_state: Function, sandbox_control: SandboxControl
):
    unreachable("dynamodb.PutItem")
    answer = update_state.call(offer_event(sandbox_control.untouched_offers(1)[0], SAVE))
    assert_error(answer, 503, "DEPENDENCY_UNAVAILABLE")
    assert sandbox_control.calls()["put"] == 0


def test_kms_unreachable_means_no_put_upstream(
    unreachable, update_state: Function, deployed: Deployed, sandbox_control: SandboxControl
):
    unreachable("kms.GenerateMac")
    key = {"idempotency-key": str(uuid.uuid4())}
    for headers in ({}, key):  # no pseudonym: neither the audit record nor the idempotency key
        answer = update_state.call(
            offer_event(sandbox_control.untouched_offers(1)[0], SAVE, headers=headers)
        )
        assert_error(answer, 503, "DEPENDENCY_UNAVAILABLE")
    assert sandbox_control.calls()["put"] == 0
    assert deployed.audit_items() == deployed.table_items("IdempotencyTable") == []


def test_a_read_whose_collector_kms_cannot_pseudonymise_is_not_disclosed(
    unreachable, get_state: Function, capsys
):
    unreachable("kms.GenerateMac")
    answer = get_state.call(event("GET", "/v1/offers/states/count"))
    body = assert_error(answer, 503, "DEPENDENCY_UNAVAILABLE")
    assert "count" not in body
    out = capsys.readouterr().out
    sys.stdout.write(out)  # still seen by the leak check
    metrics = [json.loads(line) for line in out.splitlines() if '"_aws"' in line]
    assert any("AuditWriteFailures" in m for m in metrics)  # what the audit alarm counts


@pytest.mark.parametrize(
    ("missing", "left_empty"),
    [("AuditTable", "IdempotencyTable"), ("IdempotencyTable", "AuditTable")],
    ids=["audit table missing", "idempotency table missing"],
)
def test_a_missing_table_means_no_put_upstream_even_with_a_key(
    update_state: Function, deployed: Deployed, sandbox_control: SandboxControl, missing, left_empty
):
    boto3.client("dynamodb").delete_table(TableName=deployed.refs[missing])
    key = {"idempotency-key": str(uuid.uuid4())}
    answer = update_state.call(
        offer_event(sandbox_control.untouched_offers(1)[0], SAVE, headers=key)
    )
    assert_error(answer, 503, "DEPENDENCY_UNAVAILABLE")
    assert sandbox_control.calls()["put"] == 0
    # Nothing left in the other table: no idempotency record holding the key, no audit
    # record of a write that was never sent.
    assert deployed.table_items(left_empty) == []


def test_a_read_that_cannot_be_audited_is_not_disclosed(
    get_state: Function, deployed: Deployed, sandbox_control: SandboxControl
):
    boto3.client("dynamodb").delete_table(TableName=deployed.refs["AuditTable"])
    answer = get_state.call(event("GET", "/v1/offers/states/count"))
    body = assert_error(answer, 503, "DEPENDENCY_UNAVAILABLE")
    assert "count" not in body


def test_outcome_not_written_still_answers_the_applied_change(
    unreachable, update_state: Function, sandbox_control: SandboxControl, deployed: Deployed
):
    unreachable("dynamodb.UpdateItem")
    offer = sandbox_control.untouched_offers(1)[0]
    status, _, _ = update_state.call(offer_event(offer, SAVE))
    assert status == 200  # the change happened; the PENDING record proves the attempt
    assert sandbox_control.states(MEMBER)[offer] == {"SAVE": "SAVED"}
    assert [i["outcome"] for i in deployed.audit_items()] == ["PENDING"]


def test_rotated_credentials_are_reread_once(
    deployed: Deployed, sandbox_control: SandboxControl, monkeypatch: pytest.MonkeyPatch
):
    # Without the cool-down after refused credentials (tests/integration: test_client_resilience),
    # so that the second request asks for a token at once.
    for name, value in deployed.function_environment("GetStateFunction").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIRMILES_TOKEN_REFUSED_COOLDOWN", "0")
    get_state = deployed.load("GetStateFunction")
    good = deployed.secret()
    deployed.put_secret(json.dumps({**good, "client_secret": "stale"}))
    status, _, _ = get_state.call(event("GET", "/v1/offers/states/count"))
    assert status == 502  # the stale secret was read, refused, re-read: still stale
    assert sandbox_control.calls()["token"] == 2
    deployed.put_secret(json.dumps(good))  # rotation finished
    status, _, _ = get_state.call(event("GET", "/v1/offers/states/count"))
    assert status == 200
    # The cached stale secret refused, the forced re-read works.
    assert sandbox_control.calls()["token"] == 4


def test_secret_is_read_once_for_many_requests(
    get_state: Function, sandbox_control: SandboxControl, monkeypatch: pytest.MonkeyPatch
):
    calls = []
    original = botocore.client.BaseClient._make_api_call

    def counting(self, operation, params):
        if operation == "GetSecretValue":
            calls.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    for _ in range(20):
        assert get_state.call(event("GET", "/v1/offers/states/count"))[0] == 200
    assert len(calls) == 1
    assert sandbox_control.calls()["token"] == 1


def test_provisioned_secret_holds_the_credentials(deployed: Deployed):
    assert deployed.secret()["audience"] == AUDIENCE
    # The template still generates an audit_pepper (changing how it generates the secret
    # would make CloudFormation generate it anew, credentials included); nothing reads it.
    assert len(deployed.secret()["audit_pepper"]) >= 16
