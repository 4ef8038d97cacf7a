"""Stale `PENDING` audit items turned into `UNKNOWN` (the reconcile-pending function, run on a
schedule; docs/audit.md, "Stale PENDING items").

A change's audit item is `PENDING` from before AIR MILES is called until `AuditWriter.finish`
records what happened. When the invocation ends in between (Lambda's Timeout, a crash) or that
last write fails, nothing would ever finish it. Once an item is older than the write function's
Timeout plus a margin, no invocation can finish it any more: the reconciler records `UNKNOWN`
(the change may or may not have reached AIR MILES), with `errorCode` `OUTCOME_NOT_RECORDED`
and `reconciledAt`, and counts it in the metric `StalePendingReconciled`.

It reads only the sparse index `PendingIndex` (the pending items alone, by time), never the
table, and each update is conditional on the item being still `PENDING`: an item finished
meanwhile keeps its outcome.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from offer_state.audit import PENDING_ATTRIBUTE, PENDING_INDEX, Outcome, _timestamp
from offer_state.observability import count, logger

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = dict[str, AttributeValueTypeDef]  # a DynamoDB item as the low-level client has it

OUTCOME_NOT_RECORDED = "OUTCOME_NOT_RECORDED"
# Past the write function's Timeout Lambda has ended the invocation; the margin covers clocks
# that differ between hosts and an index that lags its table (it is eventually consistent).
MARGIN_SECONDS = 60
# What the reconciler's UpdateItem names besides the key (template.yaml's IAM condition on
# the reconciler's UpdateItem lists the same names).
RECONCILER_ATTRIBUTES = ("outcome", "errorCode", "reconciledAt", PENDING_ATTRIBUTE)
# A run stops taking pages when less time than this is left; the next run goes on.
RESERVE_SECONDS = 5.0


class ReconcilerSettings(BaseModel):
    """What the reconciler reads from its environment (template.yaml sets it), at cold start."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    audit_table: str = Field(min_length=1)
    write_timeout_seconds: int = Field(ge=1, le=900)  # Lambda's own bounds

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReconcilerSettings:
        """AUDIT_TABLE_NAME, and WRITE_FUNCTION_TIMEOUT: update-state's Timeout in seconds."""
        env = os.environ if environ is None else environ
        # Missing is blank, which fails validation: the function stops at init, loudly.
        return cls.model_validate(
            {
                "audit_table": env.get("AUDIT_TABLE_NAME", ""),
                "write_timeout_seconds": env.get("WRITE_FUNCTION_TIMEOUT", ""),
            }
        )

    @property
    def stale_after(self) -> timedelta:
        """How old a PENDING item is when no invocation can finish it any more."""
        return timedelta(seconds=self.write_timeout_seconds + MARGIN_SECONDS)


@dataclass(frozen=True)
class Reconciliation:
    """What one run did."""

    reconciled: int  # stale PENDING items now UNKNOWN
    finished_meanwhile: int  # found pending, but finished before the reconciler's update
    complete: bool  # False: the run stopped for time with items left (the next run goes on)


class PendingReconciler:
    """Finds the stale PENDING items in the index and records them as UNKNOWN (boto3's
    low-level DynamoDB client is given, not created)."""

    def __init__(self, dynamodb: DynamoDBClient, table_name: str, stale_after: timedelta) -> None:
        self._dynamodb = dynamodb
        self._table = table_name
        self._stale_after = stale_after
        self._clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._page_size = 100  # items per Query page (a test makes it smaller)

    def run(self, time_left: Callable[[], float] = lambda: math.inf) -> Reconciliation:
        """Record UNKNOWN on every item still PENDING that was created more than
        `stale_after` ago; stop early, `complete=False`, when `time_left()` (seconds) drops
        under RESERVE_SECONDS. Counts the items it changed in `StalePendingReconciled`."""
        now = self._clock()
        cutoff = _timestamp(now - self._stale_after)
        reconciled = finished_meanwhile = 0
        complete = True
        for item in self._stale(cutoff):
            if time_left() < RESERVE_SECONDS:
                complete = False
                break
            if self._record_unknown(item, now):
                reconciled += 1
                logger.warning(
                    "stale PENDING audit item recorded as UNKNOWN",
                    extra={
                        "createdAt": item["sk"]["S"].split("#", 1)[0],
                        "auditCorrelationId": item.get("correlationId", {}).get("S"),
                        "auditRoute": item.get("route", {}).get("S"),
                    },
                )
            else:
                finished_meanwhile += 1
        count("StalePendingReconciled", reconciled)
        return Reconciliation(reconciled, finished_meanwhile, complete)

    def _stale(self, cutoff: str) -> Iterator[Item]:
        """The index's items created before `cutoff`, oldest first, page by page (the sort
        key starts with the creation time)."""
        pages = self._dynamodb.get_paginator("query").paginate(
            TableName=self._table,
            IndexName=PENDING_INDEX,
            KeyConditionExpression="#pending = :pending AND sk < :cutoff",
            ExpressionAttributeNames={"#pending": PENDING_ATTRIBUTE},
            ExpressionAttributeValues={
                ":pending": {"S": Outcome.PENDING.value},
                ":cutoff": {"S": cutoff},
            },
            PaginationConfig={"PageSize": self._page_size},
        )
        for page in pages:
            yield from page.get("Items", [])

    def _record_unknown(self, item: Item, now: datetime) -> bool:
        """UNKNOWN on the item if it is still PENDING; False if it was finished meanwhile."""
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"pk": item["pk"], "sk": item["sk"]},
                UpdateExpression=(
                    "SET #outcome = :unknown, #errorCode = :code, #reconciledAt = :now"
                    " REMOVE #pending"
                ),
                # Never over an outcome that was recorded: the index may lag the table, and
                # `finish` may win the race. (A missing item fails it too: no item is created.)
                ConditionExpression="#outcome = :pending",
                ExpressionAttributeNames={f"#{name}": name for name in RECONCILER_ATTRIBUTES},
                ExpressionAttributeValues={
                    ":unknown": {"S": Outcome.UNKNOWN.value},
                    ":pending": {"S": Outcome.PENDING.value},
                    ":code": {"S": OUTCOME_NOT_RECORDED},
                    ":now": {"S": _timestamp(now)},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
