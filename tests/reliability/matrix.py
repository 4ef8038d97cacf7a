"""The fault matrix: every route under every fault, each cell a scenario with the answer it
must get, the audit outcome it must leave, the AIR MILES calls it may make, and its time.

`make faults` (python -m tests.reliability.matrix) prints the table and `N passed, M failed`;
tests/reliability/test_fault_matrix.py asserts every cell. Handlers run in-process with moto
and a sandbox on loopback (tests/support/inprocess.py), with the fast upstream budget of the
tests (3 s); AWS faults are injected into botocore. Every cell must be answered before the
Timeout its invocation was given (the function's), however slow the machine.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from local.sandbox import Sandbox
from local.sandbox.seed import CATALOGUE
from offer_state.token_store import ITEM_KEY
from tests.support.aws_faults import error_answer
from tests.support.functions import M2M, OTHER, READ, SAVE, WRITE, event, machine, offer_event
from tests.support.inprocess import (
    FAKE_AWS,
    FAST_UPSTREAM,
    Deployed,
    environment,
    fresh_boto3_session,
)
from tests.support.sandbox_control import SandboxControl

BUDGET = float(FAST_UPSTREAM["AIRMILES_TOTAL_BUDGET"])
CUT_OFF_GRACE = 1.0  # past a cell's time, this long before its faults are cleared
FRESH = [o.offer_id for o in CATALOGUE[:3]]
REPLAY_KEY = "3f1c2e0a-8d4b-4c6e-9f7a-1b2c3d4e5f60"

# route name -> (function, upstream endpoint, event factory)
ROUTES: dict[str, tuple[str, str, Callable[[], dict[str, Any]]]] = {
    "GET states": (
        "GetStateFunction",
        "get",
        lambda: event("GET", "/v1/offers/states", query=[("offerId", FRESH[0])]),
    ),
    "GET find": ("GetStateFunction", "find", lambda: event("GET", "/v1/offers/states/find")),
    "GET count": ("GetStateFunction", "count", lambda: event("GET", "/v1/offers/states/count")),
    "PUT one": ("UpdateStateFunction", "put", lambda: offer_event(FRESH[0], SAVE)),
    "PUT batch (m2m)": (
        "UpdateStateFunction",
        "put",
        lambda: event(
            "PUT",
            "/v1/offers/states",
            body={"stateChanges": [{"offerId": o, **SAVE} for o in FRESH[:2]]},
            **machine(OTHER, WRITE, M2M, READ),
        ),
    ),
    "PUT one (key)": (
        "UpdateStateFunction",
        "put",
        lambda: offer_event(FRESH[1], SAVE, headers={"idempotency-key": REPLAY_KEY}),
    ),
    "GET health": ("GetStateFunction", "health", lambda: event("GET", "/health", authorized=False)),
}


@dataclass(frozen=True)
class Cell:
    scenario: str
    route: str
    status: int
    code: str | None
    audit: tuple[str, ...]  # outcomes of the audit items the request leaves
    calls: dict[str, int]  # AIR MILES calls per endpoint (only those named are checked)
    faults: tuple[dict[str, Any], ...] = ()
    aws_fault: str | None = None
    # The same request was made once before: "success", "failure" (refused by AIR MILES), or
    # "unknown" (its answer lost: outcome unknown).
    before: str | None = None
    replayed: bool = False

    @property
    def name(self) -> str:
        return f"{self.route}: {self.scenario}"

    @property
    def expected(self) -> str:
        return _summary(self.status, self.code, self.audit, self.calls)


@dataclass
class Observation:
    status: int
    code: str | None
    audit: tuple[str, ...]
    calls: dict[str, int]
    seconds: float
    timeout: float  # what the invocation was given (its function's Timeout)
    replayed: bool
    problems: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return _summary(self.status, self.code, self.audit, self.calls)


def _summary(status: int, code: str | None, audit: tuple[str, ...], calls: dict[str, int]) -> str:
    called = ",".join(f"{k}={v}" for k, v in sorted(calls.items()))
    return f"{status} {code or '-'} audit[{','.join(audit) or '-'}] calls[{called}]"


# ---------------------------------------------------------------------------- the cells

# AIR MILES misbehaving on the route's own endpoint:
# (scenario, fault, status, code, calls of that endpoint, audit outcome)
UPSTREAM_FAULTS: list[tuple[str, dict[str, Any], int, str | None, int, str]] = [
    ("500", {"mode": "status", "status": 500}, 502, "UPSTREAM_ERROR", 1, "FAILED"),
    (
        "502, retried",
        {"mode": "status", "status": 502, "retryAfter": 0},
        502,
        "UPSTREAM_ERROR",
        3,
        "FAILED",
    ),
    (
        "503, retried",
        {"mode": "status", "status": 503, "retryAfter": 0},
        502,
        "UPSTREAM_ERROR",
        3,
        "FAILED",
    ),
    (
        "503 Retry-After 30 s",
        {"mode": "status", "status": 503, "retryAfter": 30},
        429,
        "RATE_LIMITED",
        1,
        "FAILED",
    ),
    (
        "429 Retry-After 30 s",
        {"mode": "status", "status": 429, "retryAfter": 30},
        429,
        "RATE_LIMITED",
        1,
        "FAILED",
    ),
    (
        "one 429 Retry-After 0",
        {"mode": "status", "status": 429, "retryAfter": 0, "count": 1},
        200,
        None,
        2,
        "SUCCEEDED",
    ),
    (
        "one 503 then fine",
        {"mode": "status", "status": 503, "retryAfter": 0, "count": 1},
        200,
        None,
        2,
        "SUCCEEDED",
    ),
    (
        "401 (token renewed twice)",
        {"mode": "status", "status": 401},
        502,
        "UPSTREAM_ERROR",
        3,
        "FAILED",
    ),
    ("404", {"mode": "status", "status": 404}, 404, "OFFER_NOT_FOUND", 1, "FAILED"),
    ("400", {"mode": "status", "status": 400}, 400, "VALIDATION_ERROR", 1, "FAILED"),
    ("delay 200 ms (inside budget)", {"mode": "delay", "delayMs": 200}, 200, None, 1, "SUCCEEDED"),
    (
        "delay 5 s (past budget)",
        {"mode": "delay", "delayMs": 5000},
        504,
        "UPSTREAM_TIMEOUT",
        3,
        "FAILED",
    ),
    ("timeout (no answer)", {"mode": "timeout"}, 504, "UPSTREAM_TIMEOUT", 3, "FAILED"),
    ("malformed 200", {"mode": "malformed"}, 502, "UPSTREAM_ERROR", 1, "FAILED"),
    ("connection reset", {"mode": "reset"}, 502, "UPSTREAM_ERROR", 3, "FAILED"),
]
# What those scenarios become on the PUT endpoint where the rules for a change differ from a
# read's: a PUT is sent again only when it certainly did not reach AIR MILES or AIR MILES said
# it did not process it (429, 503). A 502 (a gateway in front of AIR MILES may answer it after
# AIR MILES processed the change), an answer lost after the PUT was sent (no answer, a reset
# after the request went out, past the deadline) or a 200 that is not well-formed leave the
# outcome unknown: sent once, audited UNKNOWN, answered OUTCOME_UNKNOWN (502, or 504 when
# AIR MILES did not answer in time).
# scenario -> (scenario on a PUT, status, code, PUT calls, audit outcome)
UNKNOWN = "OUTCOME_UNKNOWN"
PUT_RULES: dict[str, tuple[str, int, str, int, str]] = {
    # A 500 may come after AIR MILES applied part or all of the change: unknown, as a 502.
    "500": ("500, not sent again", 502, UNKNOWN, 1, "UNKNOWN"),
    "502, retried": ("502, not sent again", 502, UNKNOWN, 1, "UNKNOWN"),
    "delay 5 s (past budget)": ("delay 5 s (past budget)", 504, UNKNOWN, 1, "UNKNOWN"),
    "timeout (no answer)": ("timeout (no answer)", 504, UNKNOWN, 1, "UNKNOWN"),
    "malformed 200": ("malformed 200", 502, UNKNOWN, 1, "UNKNOWN"),
    "connection reset": ("connection reset", 502, UNKNOWN, 1, "UNKNOWN"),
}
# Answers that misbehave on the wire. A read retries a cut or mislabelled answer like any
# transient failure, then 502; only the call's deadline stops a drip (each byte comes inside
# the read timeout): 504. The token endpoint's answers get the
# same: fetching a token changes nothing, so it is retried alike, before a read or a write.
# A drip of 50 ms a byte: every answer (170 bytes at the least) takes over 8 s, far past the
# 3 s budget, and each byte comes well inside the 0.5 s read timeout.
DRIP = {"mode": "drip", "intervalMs": 50}
WIRE_FAULTS: list[tuple[str, dict[str, Any], int, str | None, int, str]] = [
    ("truncated answer", {"mode": "truncate"}, 502, "UPSTREAM_ERROR", 3, "FAILED"),
    ("bad gzip", {"mode": "badGzip"}, 502, "UPSTREAM_ERROR", 3, "FAILED"),
    ("drip (past budget)", DRIP, 504, "UPSTREAM_TIMEOUT", 1, "FAILED"),
]
# A PUT that reached AIR MILES and got no usable answer: whether the change was stored cannot
# be known, so it is never re-sent and is audited UNKNOWN, answered OUTCOME_UNKNOWN with 502 or
# 504. The sandbox stores it, or not, as `applied` says: the gateway must not care which.
# (scenario, fault, status)
UNKNOWN_WRITE_FAULTS: list[tuple[str, dict[str, Any], int]] = [
    ("truncated answer", {"mode": "truncate"}, 502),
    ("drip (past budget)", DRIP, 504),
    ("timeout (no answer)", {"mode": "timeout"}, 504),
    ("connection reset", {"mode": "reset"}, 502),
    ("delay 5 s (past budget)", {"mode": "delay", "delayMs": 5000}, 504),
]
SECRET_FAULTS = ("secrets-unreachable", "secret-missing", "secret-not-json", "secret-missing-field")
# The deployment's shared token cannot be used: the environment's own token serves instead.
TOKEN_STORE_FAULTS = ("token-store-unreachable", "token-store-throttled", "token-item-corrupt")
# No audit record without its key: KMS, which makes the collector's pseudonym, counts here too.
AUDIT_FAULTS = (
    "audit-unreachable",
    "audit-throttled",
    "audit-conditional-failure",
    "pseudonym-key-unreachable",
)
UNAVAILABLE = (503, "DEPENDENCY_UNAVAILABLE")


def _cells() -> Iterator[Cell]:
    # Every fault mode on every Offer State endpoint, through the route that calls it.
    for route in (
        "GET states",
        "GET find",
        "GET count",
        "PUT one",
        "PUT batch (m2m)",
        "GET health",
    ):
        endpoint = ROUTES[route][1]
        for scenario, fault, status, code, calls, outcome in UPSTREAM_FAULTS:
            if status == 404 and endpoint not in ("get", "put"):
                status, code = 502, "UPSTREAM_ERROR"  # FIND, COUNT and health name no offer
            if endpoint == "put" and scenario in PUT_RULES:
                scenario, status, code, calls, outcome = PUT_RULES[scenario]
            audit = () if endpoint == "health" else (outcome,)  # health touches no collector
            spec = ({"endpoint": endpoint, **fault},)
            yield Cell(scenario, route, status, code, audit, {endpoint: calls}, spec)
    yield from _wire_fault_cells()
    # Every fault mode on the token endpoint, before a read and before a write.
    for route in ("GET states", "PUT one"):
        endpoint = ROUTES[route][1]
        for scenario, fault, status, code, calls, outcome in UPSTREAM_FAULTS:
            if status in (400, 404):
                status, code = 502, "UPSTREAM_ERROR"  # the token endpoint refused us: our problem
            if scenario.startswith("401"):  # the token endpoint's: the secret re-read once
                scenario, calls = "401 (secret re-read once)", 2
            spec = ({"endpoint": "token", **fault},)
            reached = 1 if status == 200 else 0  # the Offer State API is called once a token came
            counted = {"token": calls, endpoint: reached}
            yield Cell(f"token {scenario}", route, status, code, (outcome,), counted, spec)
    for route in ("GET states", "PUT one"):
        endpoint = ROUTES[route][1]
        for aws_fault in SECRET_FAULTS:
            # AIR MILES cannot be called; the audit trail, which needs no secret, says so.
            none = {endpoint: 0, "token": 0}
            yield Cell(aws_fault, route, *UNAVAILABLE, ("FAILED",), none, aws_fault=aws_fault)
        # A token of the environment's own, one request for it: answered as if nothing failed.
        for aws_fault in TOKEN_STORE_FAULTS:
            once = {endpoint: 1, "token": 1}
            yield Cell(aws_fault, route, 200, None, ("SUCCEEDED",), once, aws_fault=aws_fault)
        # A read is made, then cannot be audited: it is not disclosed. A write is never sent.
        # Without the collector's pseudonym (KMS) neither is made: it comes first.
        for aws_fault in AUDIT_FAULTS:
            read = endpoint == "get" and aws_fault != "pseudonym-key-unreachable"
            reads = {endpoint: int(read)}
            yield Cell(aws_fault, route, *UNAVAILABLE, (), reads, aws_fault=aws_fault)
    keyed = "PUT one (key)"
    yield Cell(
        "idempotency-unreachable",
        keyed,
        *UNAVAILABLE,
        (),
        {"put": 0},
        aws_fault="idempotency-unreachable",
    )
    # A replay: the first answer again, no call to AIR MILES, no second audit record.
    yield Cell(
        "replay after success",
        keyed,
        200,
        None,
        (),
        {"put": 0, "token": 0},
        before="success",
        replayed=True,
    )
    down = ({"endpoint": "put", "mode": "status", "status": 503, "retryAfter": 0},)
    yield Cell(
        "replay while AIR MILES is down",
        keyed,
        200,
        None,
        (),
        {"put": 0},
        down,
        before="success",
        replayed=True,
    )
    # A write that failed upstream leaves its key free: the retry goes through, once.
    yield Cell(
        "retry of a failed write, same key",
        keyed,
        200,
        None,
        ("SUCCEEDED",),
        {"put": 1},
        before="failure",
    )
    # A write of unknown outcome keeps its key: a repeat gets its answer again, sends nothing.
    yield Cell(
        "repeat after an unknown outcome, same key",
        keyed,
        502,
        UNKNOWN,
        (),
        {"put": 0, "token": 0},
        before="unknown",
        replayed=True,
    )


def _wire_fault_cells() -> Iterator[Cell]:
    """The wire faults on every endpoint, and the writes of unknown outcome."""
    for route in ("GET states", "GET find", "GET count", "GET health"):
        endpoint = ROUTES[route][1]
        audit = () if endpoint == "health" else ("FAILED",)
        for scenario, fault, status, code, calls, _ in WIRE_FAULTS:
            spec = ({"endpoint": endpoint, **fault},)
            yield Cell(scenario, route, status, code, audit, {endpoint: calls}, spec)
    for route in ("PUT one", "PUT batch (m2m)"):
        for scenario, fault, status in UNKNOWN_WRITE_FAULTS:
            for applied in (True, False):
                spec = ({"endpoint": "put", **fault, "applied": applied},)
                named = f"{scenario}, {'applied' if applied else 'not applied'}"
                yield Cell(named, route, status, UNKNOWN, ("UNKNOWN",), {"put": 1}, spec)
        spec = ({"endpoint": "put", "mode": "badGzip"},)  # stored, as a correct answer says
        yield Cell("bad gzip, applied", route, 502, UNKNOWN, ("UNKNOWN",), {"put": 1}, spec)
    for route in ("GET states", "PUT one"):
        endpoint = ROUTES[route][1]
        for scenario, fault, status, code, calls, outcome in WIRE_FAULTS:
            spec = ({"endpoint": "token", **fault},)
            counted = {"token": calls, endpoint: 0}
            yield Cell(f"token {scenario}", route, status, code, (outcome,), counted, spec)


CELLS: list[Cell] = list(_cells())


# ---------------------------------------------------------------------------- running


def _table_of(request: Any) -> str:
    return json.loads(request.body or b"{}").get("TableName", "")


@contextmanager
def _aws_fault(kind: str | None, deployed: Deployed) -> Iterator[None]:
    """Make Secrets Manager, KMS or a table misbehave for every client created inside (or
    the token table hold an item that cannot be used)."""
    fresh_boto3_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    audit, idempotency = deployed.refs["AuditTable"], deployed.refs["IdempotencyTable"]
    tokens = deployed.refs["TokenTable"]

    def unreachable(operation: str, table: str | None = None) -> None:
        def refuse(request: Any, **_: Any) -> None:
            if table is None or _table_of(request) == table:
                raise EndpointConnectionError(endpoint_url=request.url)

        session.events.register_first(f"before-send.{operation}", refuse)

    def error(operation: str, table: str, code: str) -> None:
        # Answered before any request is made: what botocore raises once its own retries of
        # a throttled call are spent. (A before-send answer would still reach moto.)
        def answer(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
            if json.loads(params.get("body") or b"{}").get("TableName") != table:
                return None
            return error_answer(code)

        session.events.register_first(f"before-call.{operation}", answer)

    if kind == "secrets-unreachable":
        unreachable("secrets-manager.GetSecretValue")
    elif kind == "secret-missing":
        boto3.client("secretsmanager").delete_secret(
            SecretId=deployed.refs["AirMilesSecret"], ForceDeleteWithoutRecovery=True
        )
    elif kind == "secret-not-json":
        deployed.put_secret("client_id=x;client_secret=y")
    elif kind == "secret-missing-field":
        deployed.put_secret(
            json.dumps({k: v for k, v in deployed.secret().items() if k != "client_secret"})
        )
    elif kind == "audit-unreachable":
        unreachable("dynamodb.PutItem", audit)
    elif kind == "audit-throttled":
        error("dynamodb.PutItem", audit, "ProvisionedThroughputExceededException")
    elif kind == "audit-conditional-failure":
        error("dynamodb.PutItem", audit, "ConditionalCheckFailedException")
    elif kind == "pseudonym-key-unreachable":
        unreachable("kms.GenerateMac")
    elif kind == "token-store-unreachable":
        unreachable("dynamodb.GetItem", tokens)
    elif kind == "token-store-throttled":
        error("dynamodb.GetItem", tokens, "ProvisionedThroughputExceededException")
    elif kind == "token-item-corrupt":
        boto3.client("dynamodb").put_item(
            TableName=tokens,
            Item={
                "pk": {"S": ITEM_KEY},
                "ciphertext": {"B": b"not a ciphertext"},
                "tokenId": {"S": "0123456789abcdef"},
                "issuedAt": {"N": "0"},
                "expiresAt": {"N": "4102444800"},
                "refreshAt": {"N": "4102441200"},
            },
        )
    elif kind == "idempotency-unreachable":
        unreachable("dynamodb.PutItem", idempotency)
    try:
        yield
    finally:
        fresh_boto3_session()


def run_cell(cell: Cell, sandbox_control: SandboxControl) -> Observation:
    function_id, _, make_event = ROUTES[cell.route]
    sandbox_control.reset()
    fresh_boto3_session()
    with mock_aws():
        deployed = Deployed.create(sandbox_control.url)
        with environment(deployed.function_environment(function_id)):
            function = deployed.load(function_id)
            if cell.before == "success":
                function.call(make_event())
            elif cell.before == "failure":  # AIR MILES refused it once: the key stays usable
                sandbox_control.fault("put", "status", status=404, count=1)
                function.call(make_event())
            elif cell.before == "unknown":  # its answer lost once: the key keeps that answer
                sandbox_control.fault("put", "reset", applied=True, count=1)
                function.call(make_event())
            audited_before = len(deployed.audit_items())
            before = sandbox_control.calls()
            with _aws_fault(cell.aws_fault, deployed):
                for fault in cell.faults:
                    sandbox_control.fault(**fault)
                started = time.monotonic()
                # The promise a cell checks for time: the answer before the Timeout the
                # invocation was given (the function's). Not the budget plus some slack: the
                # budget starts at the first exchange with AIR MILES, after CPU work whose
                # length is the machine's (offer_state.deadlines).
                with _cut_off(sandbox_control.url, function.timeout + CUT_OFF_GRACE):
                    status, headers, body = function.call(make_event())
                seconds = time.monotonic() - started
            sandbox_control.clear_faults()
            after = sandbox_control.calls()
            items = deployed.audit_items()[audited_before:]
            deployed.record_tables()
    observation = Observation(
        timeout=function.timeout,
        status=status,
        code=(body or {}).get("error", {}).get("code") if isinstance(body, dict) else None,
        audit=tuple(i["outcome"] for i in items),
        calls={k: after[k] - before[k] for k in cell.calls},
        seconds=seconds,
        replayed=headers.get("Idempotent-Replayed") == "true",
    )
    _check(cell, observation, body)
    return observation


def assert_cell_holds(cell: Cell, sandbox_control: SandboxControl) -> None:
    """Runs the cell (`run_cell`); fails with what was observed unless all was as expected."""
    seen = run_cell(cell, sandbox_control)
    assert seen.problems == [], (
        f"expected {cell.expected}, observed {seen.summary} in {seen.seconds:.2f} s"
    )


@contextmanager
def _cut_off(sandbox_url: str, seconds: float) -> Iterator[None]:
    """Clears the sandbox's faults if the block runs past `seconds`, which ends any held or
    dripping connection: a cell the gateway cannot end (a drip read to its end takes minutes)
    fails on its time, and soon."""
    # A control client of its own: the timer's thread must not share the cell's session.
    timer = threading.Timer(seconds, SandboxControl(sandbox_url).clear_faults)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()


def _check(cell: Cell, seen: Observation, body: Any) -> None:
    problems = seen.problems
    if (seen.status, seen.code) != (cell.status, cell.code):
        problems.append(f"answer {seen.status} {seen.code}")
    if seen.audit != cell.audit:
        problems.append(f"audit {seen.audit}")
    if seen.calls != cell.calls:
        problems.append(f"calls {seen.calls}")
    if seen.seconds >= seen.timeout:
        problems.append(f"took {seen.seconds:.2f} s, past the {seen.timeout:.0f} s Timeout")
    if seen.replayed != cell.replayed:
        problems.append(f"replayed={seen.replayed}")
    if seen.status >= 400 and not (
        isinstance(body, dict) and set(body) == {"error", "correlationId"}
    ):
        problems.append("error body not in the documented shape")
    # A write that reached AIR MILES must have left a record first (write-ahead).
    if seen.calls.get("put") and not seen.audit and not cell.replayed:
        problems.append("a PUT reached AIR MILES without an audit record")


@contextmanager
def open_matrix_sandbox() -> Iterator[SandboxControl]:
    """A sandbox of its own, and moto's fake AWS credentials, for the duration."""
    with (
        Sandbox(port=0) as server,
        environment(FAKE_AWS, remove=("AWS_PROFILE", "AWS_ENDPOINT_URL")),
    ):
        yield SandboxControl(server.url)


def main() -> int:
    import logging

    logging.disable(logging.CRITICAL)
    rows: list[tuple[str, str, str, str]] = []
    failed = 0
    # FAULTS="PUT one" runs only the cells whose name contains it.
    cells = [c for c in CELLS if os.environ.get("FAULTS", "") in c.name]
    print(
        f"fault matrix: {len(cells)} cells (upstream budget {BUDGET:.0f} s)",
        file=sys.stderr,
        flush=True,
    )
    with open_matrix_sandbox() as sandbox_control:
        for number, cell in enumerate(cells, 1):
            print(f"  [{number:3}/{len(cells)}] {cell.name}", file=sys.stderr, flush=True)
            with _quiet():
                seen = run_cell(cell, sandbox_control)
            ok = not seen.problems
            failed += not ok
            observed = f"{seen.summary} {seen.seconds:.2f}s"
            rows.append(
                (
                    cell.name,
                    cell.expected,
                    observed,
                    "pass" if ok else "FAIL: " + "; ".join(seen.problems),
                )
            )
    widths = [
        max(len(r[i]) for r in [("scenario", "expected", "observed", "pass"), *rows])
        for i in range(4)
    ]
    for row in [
        ("scenario", "expected", "observed", "pass"),
        tuple("-" * w for w in widths),
        *rows,
    ]:
        print("  ".join(value.ljust(widths[i]) for i, value in enumerate(row)).rstrip())
    print(f"{len(cells) - failed} passed, {failed} failed")
    return 1 if failed else 0


@contextmanager
def _quiet() -> Iterator[None]:
    """The functions log and emit metrics on stdout: keep the table readable."""
    import io
    from contextlib import redirect_stdout

    with redirect_stdout(io.StringIO()):
        yield


if __name__ == "__main__":
    raise SystemExit(main())
