"""The DynamoDB tables of a stack under test, read the same way wherever the stack runs (moto
in-process for tests/functions, the local stack's moto server for tests/e2e)."""

from __future__ import annotations

from typing import Any

# The tables whose every item the leak check reads.
LEAK_CHECKED_TABLES = ("AuditTable", "IdempotencyTable")


class StackTables:
    """Reading a stack's tables; a subclass says where a table is (`table`)."""

    def table(self, logical_id: str) -> Any:
        """The boto3 `Table` resource of the template's table `logical_id`."""
        raise NotImplementedError

    def table_items(self, logical_id: str) -> list[dict[str, Any]]:
        """Every item of the table, as Python values (numbers as Decimal)."""
        return self.table(logical_id).scan()["Items"]

    def audit_items(self) -> list[dict[str, Any]]:
        """The audit trail, oldest first."""
        return sorted(self.table_items("AuditTable"), key=lambda item: item["sk"])
