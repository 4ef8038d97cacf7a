"""Audit items as update-state leaves them before AIR MILES answers: `PENDING`, written at a
time of the test's choosing (an invocation that ended then, and never recorded the outcome)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from offer_state.audit import Action, AuditContext, AuditEntry, AuditWriter, PendingRecord
from offer_state.identity import Identity
from offer_state.pseudonyms import Pseudonym, pepper_pseudonym

MEMBER = "80000000110"


def writer_at(
    dynamodb: Any,
    table_name: str,
    age: timedelta,
    pseudonyms: Callable[[str], Pseudonym] | None = None,
) -> AuditWriter:
    """An audit writer (over boto3's low-level client `dynamodb`) whose clock is `age` behind
    the real one; its pseudonyms are the functions' (`KmsPseudonyms`) when given, else keyed
    with a test pepper (where nothing looks the collector up)."""
    written_at = datetime.now(UTC) - age
    return AuditWriter(
        dynamodb,
        table_name,
        pseudonyms=pseudonyms or (lambda number: pepper_pseudonym(number, b"a pepper for tests")),
        retention_days=1,
        clock=lambda: written_at,
    )


def begin_change(writer: AuditWriter, collector: str = MEMBER) -> tuple[PendingRecord, str]:
    """A change's PENDING item for `collector`, as update-state writes it before calling
    AIR MILES: (the record, its correlation id)."""
    correlation_id = str(uuid.uuid4())
    context = AuditContext(
        route="PUT /v1/offers/states",
        request_id=str(uuid.uuid4()),
        correlation_id=correlation_id,
        origin_client="external:test-partner:web",
    )
    entry = AuditEntry(Action.UPDATE_STATES, offer_ids=[str(uuid.uuid4())])
    record = writer.begin(Identity(collector, "member", "member-1"), context, entry)
    return record, correlation_id
