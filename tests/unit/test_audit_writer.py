"""The audit writer's items, on a clock of the test's choosing (`AuditWriter(clock=)`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from offer_state.audit import Action, AuditContext, AuditEntry, AuditWriter, Outcome
from offer_state.identity import Identity
from offer_state.pseudonyms import Pseudonym

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient

NOW = datetime(2026, 11, 25, 16, 59, 0, 123456, tzinfo=UTC)


class RecordingDynamoDB:
    """Stands in for the low-level DynamoDB client: keeps every put_item call."""

    def __init__(self) -> None:
        self.puts: list[dict[str, Any]] = []

    def put_item(self, **request: Any) -> None:
        self.puts.append(request)


def test_an_audit_item_is_dated_and_expires_by_the_writers_clock():
    dynamodb = RecordingDynamoDB()
    pseudonym = Pseudonym("COLLECTOR#" + "ab" * 32, "arn:aws:kms:us-east-1:1:key/k")
    writer = AuditWriter(
        cast("DynamoDBClient", dynamodb),
        "audit",
        pseudonyms=lambda _n: pseudonym,
        retention_days=30,
        clock=lambda: NOW,
    )
    context = AuditContext(
        route="GET /v1/offers/states/count",
        request_id="request-1",
        correlation_id="c0ffee00-0000-4000-8000-000000000000",
        origin_client="external:test-partner:web",
    )

    writer.record(
        Identity("80000000110", "member", "member-1"),
        context,
        AuditEntry(Action.COUNT_STATES),
        Outcome.SUCCEEDED,
        http_status=200,
    )

    [put] = dynamodb.puts
    item = put["Item"]
    assert item["createdAt"] == {"S": "2026-11-25T16:59:00.123Z"}
    assert item["sk"] == {"S": "2026-11-25T16:59:00.123Z#request-1"}
    assert item["expiresAt"] == {"N": str(int(NOW.timestamp()) + 30 * 86400)}
    assert item["pk"] == {"S": pseudonym.value}
    assert item["pseudonymKey"] == {"S": pseudonym.key_id}  # which key made the pk
