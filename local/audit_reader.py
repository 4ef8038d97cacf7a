"""`make audit`: the audit records of one collector or one correlation id, newest first.

    make audit COLLECTOR=80000000110             # the local stack (make run)
    make audit CORRELATION=<uuid> JSON=1         # as JSON, for machines
    make audit COLLECTOR=80000000110 STACK=offer-state-gateway-uat   # a deployed stack
    make audit COLLECTOR=80000000110 LEGACY_PEPPER_FILE=pepper.txt   # records from before KMS

Against a deployed stack it uses the usual AWS settings (AWS_PROFILE, AWS_REGION ...) and
reads the table name and the pseudonym keys from the stack's outputs. A collector's
pseudonyms are computed by KMS (`kms:GenerateMac`) under the current key and every retired
one: the reader never reads the AIR MILES credentials, and nobody holds a key in hand.
Records written before the pseudonyms moved to KMS are keyed with the old `audit_pepper`:
only a pepper given in a file (LEGACY_PEPPER_FILE) finds them.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from local.table import format_table
from offer_state.errors import DependencyUnavailableError
from offer_state.identity import is_collector_number, mask_collector_number

COLUMNS = ("time", "action", "offers", "states", "outcome", "status", "correlation id", "latency")
# Under a table that shows them: the outcomes that do not say what happened at AIR MILES.
OUTCOME_NOTES = {
    "PENDING": "PENDING: a change under way, or one whose outcome is not recorded yet"
    " (UNKNOWN once older than update-state's Timeout plus a minute).",
    "UNKNOWN": "UNKNOWN: a change was sent to AIR MILES and whether it was applied is not known"
    " (its answer was lost, or its outcome never recorded): read the offer's states again.",
}
# The stack outputs read (template.yaml declares them).
TABLE_OUTPUT = "AuditTableName"
KEY_OUTPUT = "ActivePseudonymKeyArn"
RETIRED_KEYS_OUTPUT = "RetiredPseudonymKeyArnList"  # only while keys are retired


class UsageError(Exception):
    """Bad input or an unreachable target: one line for the user, exit 2."""


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make audit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--collector", help="11-digit collector number")
    target.add_argument("--correlation", help="correlation id (a UUID)")
    parser.add_argument("--stack", help="a deployed stack's name (default: the local stack)")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    parser.add_argument(
        "--legacy-pepper-file",
        type=Path,
        help="a file holding the audit_pepper that keyed records before KMS (collector only)",
    )
    parser.add_argument("--page-size", type=int, default=100, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.collector is not None and not is_collector_number(args.collector):
        raise UsageError("a collector number is 11 digits")
    if args.legacy_pepper_file is not None and args.collector is None:
        raise UsageError("a legacy pepper finds a collector's records: give a collector")
    if args.correlation is not None:
        try:
            args.correlation = str(uuid.UUID(args.correlation))
        except ValueError:
            raise UsageError("a correlation id is a UUID") from None
    return args


def _clients(stack: str | None) -> tuple[Any, Any, str, list[str]]:
    """(dynamodb, kms, audit table name, pseudonym key ids: the current one first) of the stack
    to read. Nothing here touches the stack's secret."""
    return _local_clients() if stack is None else _stack_clients(stack)


def _local_clients() -> tuple[Any, Any, str, list[str]]:
    """The local stack's (make run), found in its AWS emulation."""
    from local.stack import Ports, aws_clients, existing_resources

    endpoint = f"http://127.0.0.1:{Ports.from_env().moto}"
    refs = existing_resources(endpoint)
    if refs is None:
        raise UsageError(
            f"no local stack answers at {endpoint}: start it with `make run`, or give STACK="
        )
    clients = aws_clients(endpoint)
    return clients["dynamodb"], clients["kms"], refs["AuditTable"], [refs["PseudonymKey"]]


def _stack_clients(stack: str) -> tuple[Any, Any, str, list[str]]:
    """A deployed stack's, named by its outputs."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        described = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except (BotoCoreError, ClientError) as exc:
        raise UsageError(f"cannot read stack {stack}: {exc}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    if TABLE_OUTPUT not in outputs or KEY_OUTPUT not in outputs:
        raise UsageError(f"stack {stack} has no {TABLE_OUTPUT} and {KEY_OUTPUT} outputs")
    retired = [k for k in outputs.get(RETIRED_KEYS_OUTPUT, "").split(",") if k]
    return (
        boto3.client("dynamodb"),
        boto3.client("kms"),
        outputs[TABLE_OUTPUT],
        [outputs[KEY_OUTPUT], *retired],
    )


def records(args: argparse.Namespace) -> Iterable[dict[str, Any]]:
    from offer_state.audit import AuditReader

    dynamodb, kms, table, key_ids = _clients(args.stack)
    reader = AuditReader(dynamodb, table, page_size=args.page_size)
    if args.correlation is not None:
        return reader.for_correlation_id(args.correlation)
    return reader.for_collector(_pseudonyms(args, kms, key_ids))


def _pseudonyms(args: argparse.Namespace, kms: Any, key_ids: list[str]) -> list[Any]:
    """The collector's pseudonym under each key, then under the legacy pepper if one is given."""
    from offer_state.pseudonyms import KmsPseudonyms, pepper_pseudonym

    pseudonyms = []
    for key_id in key_ids:
        try:
            pseudonyms.append(KmsPseudonyms(kms, key_id)(args.collector))
        except DependencyUnavailableError as exc:
            raise UsageError(f"cannot use the pseudonym key {key_id}: {exc.__cause__}") from None
    if args.legacy_pepper_file is not None:
        try:
            pepper = args.legacy_pepper_file.read_bytes().strip()
        except OSError as exc:
            raise UsageError(f"cannot read the legacy pepper: {exc.strerror}") from None
        pseudonyms.append(pepper_pseudonym(args.collector, pepper))
    return pseudonyms


def _row(item: dict[str, Any]) -> tuple[str, ...]:
    latency = f"{float(item['latencyMs']):.0f} ms" if "latencyMs" in item else "-"
    return (
        item.get("createdAt", "?"),
        item.get("action", "?"),
        _offers_cell(item.get("offerIds", [])),
        _states_cell(item.get("requestedStates", [])),
        item.get("outcome", "?") + (f" {item['errorCode']}" if "errorCode" in item else ""),
        _status_cell(item),
        item.get("correlationId", "?"),
        latency,
    )


def _offers_cell(offers: list[str]) -> str:
    """The first offer id's start, and how many more."""
    shown = offers[0][:8] + "…" if offers else "-"
    if len(offers) > 1:
        shown += f" +{len(offers) - 1}"
    return shown


def _states_cell(requested: list[dict[str, Any]]) -> str:
    """Each name:value once, in order (an entry lists its states, or is one)."""
    states = []
    for entry in requested:
        for state in entry.get("states", [entry]):
            states.append(f"{state.get('name')}:{state.get('value')}")
    return ", ".join(dict.fromkeys(states)) or "-"


def _status_cell(item: dict[str, Any]) -> str:
    status = str(item.get("httpStatus", "…"))
    if "upstreamStatus" in item:
        status += f" (AIR MILES {item['upstreamStatus']})"
    return status


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    try:
        args = _arguments(argv)
        found = list(records(args))
    except UsageError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.json:
        for item in found:
            print(json.dumps(_plain(item), sort_keys=True))
        return 0
    subject = (
        f"collector {mask_collector_number(args.collector)}"
        if args.collector
        else f"correlation id {args.correlation}"
    )
    _print_table(found, subject)
    return 0


def _print_table(found: list[dict[str, Any]], subject: str) -> None:
    """The records as a table, how many for whom, and a note on each unsettled outcome shown."""
    print(format_table([COLUMNS, *(_row(item) for item in found)]))
    print(f"{len(found)} record(s) for {subject}, newest first")
    shown = {item.get("outcome") for item in found}
    for outcome, note in OUTCOME_NOTES.items():
        if outcome in shown:
            print(note)


if __name__ == "__main__":
    raise SystemExit(main())
