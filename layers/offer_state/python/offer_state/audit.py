"""The audit trail: one DynamoDB item per call that touches a collector (docs/audit.md).

Keys never hold a collector number: `pk` is the collector's pseudonym (`offer_state.pseudonyms`:
HMAC-SHA256 computed inside KMS), and `pseudonymKey` names the key that made it. Support staff
find a collector's records with the number and `kms:GenerateMac`, while a leaked table names
nobody. Writes are write-ahead: `begin` stores a `PENDING` item before AIR MILES is called,
`finish` turns it into the outcome.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from offer_state.errors import AUDIT_TRAIL, DependencyUnavailableError, dependency_unavailable
from offer_state.identity import Identity
from offer_state.pseudonyms import Pseudonym

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient

# Only an item whose outcome is not recorded yet carries this attribute (`begin` writes it,
# `finish` removes it): the sparse index PENDING_INDEX holds exactly those items, by time, so
# the reconciler (offer_state/reconcile.py) finds the stale ones without reading the table.
PENDING_ATTRIBUTE = "pending"
PENDING_INDEX = "PendingIndex"


class Action(StrEnum):
    """What a call that touches a collector did (an audit item's `action`)."""

    GET_STATES = "GET_STATES"
    FIND_STATES = "FIND_STATES"
    COUNT_STATES = "COUNT_STATES"
    UPDATE_STATES = "UPDATE_STATES"


class Outcome(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"  # AIR MILES was called and the call failed
    REJECTED = "REJECTED"  # refused before AIR MILES was called
    # A change was sent and nobody can know whether AIR MILES applied it (its answer was lost,
    # or the invocation ended before the outcome was written): never guessed either way.
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class AuditContext:
    """What the request tells about itself (no collector number in here)."""

    route: str
    request_id: str
    correlation_id: str
    origin_client: str
    principal: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    """What the call is about."""

    action: Action
    offer_ids: Sequence[str] = ()
    requested_states: Sequence[Mapping[str, object]] = ()


@dataclass(frozen=True)
class PendingRecord:
    """A written PENDING item, to be finished."""

    pk: str
    sk: str
    started: float = field(default_factory=time.monotonic)


class PendingNotStored(DependencyUnavailableError):
    """`begin` could not store the write-ahead item (a 503: the change must not be sent). It
    may be stored all the same, by an attempt whose answer was lost before a retry failed:
    `pending` names it, for `AuditWriter.settle_unsent`."""

    def __init__(self, failure: DependencyUnavailableError, pending: PendingRecord) -> None:
        super().__init__(failure.message, dependency=failure.dependency)
        self.pending = pending


def _timestamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class AuditWriter:
    """Writes audit items with the low-level DynamoDB client (boto3 is given, not created)."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table_name: str,
        pseudonyms: Callable[[str], Pseudonym],
        retention_days: int,
        *,
        on_failure: Callable[[str], None] = lambda _operation: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        from boto3.dynamodb.types import TypeSerializer  # boto3: 134 ms CPU at 0.15 core

        self._dynamodb = dynamodb
        self._table = table_name
        self._pseudonyms = pseudonyms
        self._retention_seconds = retention_days * 86400
        self._on_failure = on_failure
        self._clock = clock
        self._serialize = TypeSerializer().serialize

    def record(
        self,
        identity: Identity,
        context: AuditContext,
        entry: AuditEntry,
        outcome: Outcome,
        *,
        http_status: int,
        upstream_status: int | None = None,
        latency_ms: float | None = None,
        error_code: str | None = None,
    ) -> None:
        """One finished item (reads, and writes refused before any upstream call)."""
        item = self._item(identity, context, entry, outcome)
        item.update(
            self._finished(http_status, upstream_status, latency_ms, error_code, states_after=None)
        )
        self._put(item)

    def begin(self, identity: Identity, context: AuditContext, entry: AuditEntry) -> PendingRecord:
        """The write-ahead PENDING item; raises DependencyUnavailableError if not stored
        (PendingNotStored when its PutItem failed: see `settle_unsent`)."""
        item = self._item(identity, context, entry, Outcome.PENDING)
        item[PENDING_ATTRIBUTE] = Outcome.PENDING.value
        pending = PendingRecord(pk=str(item["pk"]), sk=str(item["sk"]))
        try:
            self._put(item)
        except DependencyUnavailableError as exc:
            raise PendingNotStored(exc, pending) from exc.__cause__
        return pending

    def finish(
        self,
        pending: PendingRecord,
        outcome: Outcome,
        *,
        http_status: int,
        upstream_status: int | None = None,
        error_code: str | None = None,
        states_after: Sequence[Mapping[str, object]] | None = None,
        idempotency_record: str | None = None,
    ) -> None:
        """Turn the PENDING item into its outcome (only if it is still PENDING); the item
        leaves the pending index. `idempotency_record="NOT_SAVED"` notes a success whose
        idempotency record was lost."""
        latency_ms = (time.monotonic() - pending.started) * 1000
        values = self._finished(http_status, upstream_status, latency_ms, error_code, states_after)
        if idempotency_record is not None:
            values["idempotencyRecord"] = idempotency_record
        with self._writing("finish"):
            self._set_outcome(pending, outcome, values)

    def settle_unsent(self, failure: PendingNotStored) -> bool:
        """FAILED, with the partner's answer (`failure`: 503), on the item `begin` failed to
        store, should an attempt have stored it after all: the change was not sent, and the
        item must not stay PENDING (the reconciler would record UNKNOWN). True when there
        was such an item; False when there was none. DependencyUnavailableError when DynamoDB
        cannot be used (not counted again: `begin` counted the failure)."""
        values = self._finished(failure.status, None, None, failure.code, states_after=None)
        try:
            self._set_outcome(failure.pending, Outcome.FAILED, values)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False  # not stored (the update creates nothing), or not PENDING
            raise dependency_unavailable(AUDIT_TRAIL, exc) from exc
        except BotoCoreError as exc:
            raise dependency_unavailable(AUDIT_TRAIL, exc) from exc
        return True

    def _set_outcome(
        self, pending: PendingRecord, outcome: Outcome, values: dict[str, object]
    ) -> None:
        """`outcome` and `values` on the item, if it is still PENDING; it leaves the index."""
        values = {**values, "outcome": outcome.value}
        self._dynamodb.update_item(
            TableName=self._table,
            Key={"pk": {"S": pending.pk}, "sk": {"S": pending.sk}},
            UpdateExpression="SET "
            + ", ".join(f"#{k} = :{k}" for k in values)
            + " REMOVE #pending",
            ConditionExpression="#outcome_was = :pending",
            ExpressionAttributeNames={
                **{f"#{k}": k for k in values},
                "#outcome_was": "outcome",
                "#pending": PENDING_ATTRIBUTE,
            },
            ExpressionAttributeValues={
                **{f":{k}": self._serialize(v) for k, v in values.items()},
                ":pending": {"S": Outcome.PENDING.value},
            },
        )

    # ------------------------------------------------------------------ items

    def _item(
        self, identity: Identity, context: AuditContext, entry: AuditEntry, outcome: Outcome
    ) -> dict[str, object]:
        pseudonym = self.pseudonym(identity.collector_number)
        now = self._clock()
        item: dict[str, object] = {
            "pk": pseudonym.value,
            "pseudonymKey": pseudonym.key_id,
            "sk": f"{_timestamp(now)}#{context.request_id}",
            "createdAt": _timestamp(now),
            "expiresAt": int(now.timestamp()) + self._retention_seconds,
            "action": entry.action.value,
            "route": context.route,
            "offerIds": list(entry.offer_ids),
            "requestedStates": list(entry.requested_states),
            "outcome": outcome.value,
            "collector": identity.masked_number,
            "tokenKind": identity.kind,
            "principal": context.principal,
            "correlationId": context.correlation_id,
            "requestId": context.request_id,
            "originClient": context.origin_client,
            "sourceIp": context.source_ip,
            "userAgent": context.user_agent,
        }
        return {k: v for k, v in item.items() if v not in (None, [], "")}

    def pseudonym(self, collector_number: str) -> Pseudonym:
        """The collector's pseudonym, the key of its items (made once per environment and
        collector); DependencyUnavailableError, counted as an audit write failure, if the key
        cannot be used."""
        try:
            return self._pseudonyms(collector_number)
        except DependencyUnavailableError:
            self._on_failure("pseudonym")  # no key, no record: an audit write failure
            raise

    @staticmethod
    def _finished(
        http_status: int,
        upstream_status: int | None,
        latency_ms: float | None,
        error_code: str | None,
        states_after: Sequence[Mapping[str, object]] | None,
    ) -> dict[str, object]:
        values: dict[str, object] = {
            "httpStatus": http_status,
            "upstreamStatus": upstream_status,
            "latencyMs": Decimal(f"{latency_ms:.1f}") if latency_ms is not None else None,
            "errorCode": error_code,
            "statesAfter": list(states_after) if states_after is not None else None,
        }
        return {k: v for k, v in values.items() if v is not None}

    def _put(self, item: dict[str, object]) -> None:
        with self._writing("put"):
            try:
                self._dynamodb.put_item(
                    TableName=self._table,
                    Item={k: self._serialize(v) for k, v in item.items()},
                    # A second item under the same key would hide the first: never overwrite.
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code != "ConditionalCheckFailedException" or not self._stored(item):
                    raise

    def _stored(self, item: dict[str, object]) -> bool:
        """Whether `item` itself is stored: botocore retries a PutItem whose answer was lost,
        and when the first attempt had stored it the retry fails its own condition."""
        found = self._dynamodb.get_item(
            TableName=self._table,
            Key={"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}},
            ConsistentRead=True,
            ProjectionExpression="requestId, correlationId",
        ).get("Item", {})
        return found.get("requestId") == {"S": item["requestId"]} and found.get(
            "correlationId"
        ) == {"S": item["correlationId"]}

    @contextmanager
    def _writing(self, operation: str) -> Iterator[None]:
        """Any DynamoDB failure is counted and becomes a 503 (DependencyUnavailableError)."""
        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            self._on_failure(operation)
            raise dependency_unavailable(AUDIT_TRAIL, exc) from exc


# An audit item read back: its attributes as boto3's TypeDeserializer makes them (str, Decimal,
# list, ...; boto3 has no types for it).
Record = dict[str, Any]


class AuditReader:
    """Reads the trail back, newest first, a page at a time (support staff's view).

    A collector's records are found by their pseudonyms, which the caller computes (with
    `kms:GenerateMac`: `offer_state.pseudonyms`); this reader reads the table only."""

    def __init__(self, dynamodb: DynamoDBClient, table_name: str, *, page_size: int = 100) -> None:
        from boto3.dynamodb.types import TypeDeserializer  # boto3: 134 ms CPU at 0.15 core

        self._dynamodb = dynamodb
        self._table = table_name
        self._page_size = page_size
        self._deserialize = TypeDeserializer().deserialize

    def for_collector(self, pseudonyms: Sequence[Pseudonym]) -> Iterator[Record]:
        """The records filed under any of `pseudonyms` (one collector's, under each key that
        has keyed the trail), newest first across all of them."""
        queries = [
            self._query(KeyConditionExpression="pk = :key", key=value)
            for value in dict.fromkeys(p.value for p in pseudonyms)
        ]
        # Each query is newest first (the sort key starts with the time): merge, page by page.
        return heapq.merge(*queries, key=lambda item: item["sk"], reverse=True)

    def for_correlation_id(self, correlation_id: str) -> Iterator[Record]:
        return self._query(
            IndexName="CorrelationIndex",
            KeyConditionExpression="correlationId = :key",
            key=correlation_id,
        )

    def _query(self, *, key: str, **query: Any) -> Iterator[Record]:
        # `query`: the rest of the Query's parameters (its key condition, an index), as given.
        pages = self._dynamodb.get_paginator("query").paginate(
            TableName=self._table,
            ExpressionAttributeValues={":key": {"S": key}},
            ScanIndexForward=False,  # newest first: the sort key starts with the time
            PaginationConfig={"PageSize": self._page_size},
            **query,
        )
        for page in pages:
            for item in page.get("Items", []):
                yield {k: self._deserialize(v) for k, v in item.items()}
