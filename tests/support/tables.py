"""The DynamoDB tables of a stack under test, read the same way wherever the stack runs (moto
in-process for tests/functions, the local stack's moto server for tests/e2e)."""

from __future__ import annotations

import json
from typing import Any

from boto3.dynamodb.types import Binary

# The tables whose every item the leak check reads.
LEAK_CHECKED_TABLES = ("AuditTable", "IdempotencyTable", "TokenTable")


class StackTables:
    """Reading a stack's tables; a subclass says where a table is (`table`)."""

    def table(self, logical_id: str) -> Any:
        """The boto3 `Table` resource of the template's table `logical_id`."""
        raise NotImplementedError

    def table_items(self, logical_id: str) -> list[dict[str, Any]]:
        """Every item of the table, as Python values (numbers as Decimal)."""
        return self.table(logical_id).scan()["Items"]

    def table_text(self, logical_id: str) -> str:
        """Every item of the table as the leak check reads it: JSON, with binary attributes
        decoded as text, so that a token kept in clear in one (the token table's `ciphertext`)
        is seen, not skipped."""
        return json.dumps(self.table_items(logical_id), default=_as_text)

    def audit_items(self) -> list[dict[str, Any]]:
        """The audit trail, oldest first."""
        return sorted(self.table_items("AuditTable"), key=lambda item: item["sk"])


def _as_text(value: Any) -> str:
    if isinstance(value, Binary):
        return bytes(value.value).decode("utf-8", errors="replace")
    return str(value)  # Decimal
