"""`make load`: the local stack under concurrent requests, through its gateway.

It starts a local stack of its own (what `make run` starts, on free ports, with the same
`LOCAL_MAX_ENVIRONMENTS` and `LOCAL_ENVIRONMENT_WAIT`), then loads it at concurrency 1, 4 and
16 in turn: each level sends `LOAD_REQUESTS` requests (default 200) or runs `LOAD_SECONDS`
seconds (default 20), whichever ends first. The mix is read-heavy, three
`GET /v1/offers/states` (three offers each) to one `PUT /v1/offers/{offerId}/states` (a SAVE,
with an `Idempotency-Key` of its own, as partners send it), each from one of 16 dev member
tokens and with an `X-Correlation-Id` of its own. Only the first environment of each function
is started beforehand: the others start as the load needs them, and their cold starts count,
as they do on Lambda.

Then it checks, and exits 1 if a check fails:
- every answer is a 2xx;
- every 2xx answer has exactly one audit record (found by its correlation id);
- no audit record is left `PENDING`.

Progress goes to stderr; a table and a summary line to stdout; the figures to
`bench-results.json` under `load` (`make bench` keeps them, and this keeps `make bench`'s).

The requests are sent by a thread per concurrent client with `requests`, not by a load tool
such as locust: what is measured is small (throughput, three percentiles, status counts), the
checks need every answer's correlation id, and `requests` is installed already, while locust
would bring gevent and a web UI into the dev dependencies for it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import requests

from local.bench_results import RESULTS_FILE, write_load
from local.console import stderr_line
from local.sandbox.seed import CATALOGUE
from local.serving import free_ports, loopback_session
from local.stack import LocalStack, Ports, aws_clients
from local.table import format_table
from offer_state.audit import Outcome

CONCURRENCY = (1, 4, 16)
PUT_EVERY = 4  # every 4th request is a PUT: three GETs to one PUT
GET_OFFERS = 3
COLLECTORS = tuple(str(80000000200 + n) for n in range(16))  # one per concurrent client
REQUEST_TIMEOUT = 30  # seconds: API Gateway's longest integration timeout


@dataclass(frozen=True)
class Answer:
    method: str
    status: int  # 0: no HTTP answer (the connection failed or the request timed out)
    ms: float
    correlation_id: str


@dataclass(frozen=True)
class Level:
    """One concurrency level's answers, and how long it took."""

    concurrency: int
    answers: Sequence[Answer]
    seconds: float
    cold_starts: int = 0  # environments started during the level, all functions together

    def figures(self) -> dict[str, Any]:
        latencies = sorted(answer.ms for answer in self.answers)
        p50, p95, p99 = percentiles(latencies, (50, 95, 99))
        statuses = Counter(f"{answer.method} {answer.status}" for answer in self.answers)
        return {
            "requests": len(self.answers),
            "seconds": round(self.seconds, 2),
            "throughput_rps": round(len(self.answers) / self.seconds, 1) if self.seconds else 0,
            "p50_ms": p50,
            "p95_ms": p95,
            "p99_ms": p99,
            "statuses": dict(sorted(statuses.items())),
            "cold_starts": self.cold_starts,
        }


def percentiles(values: Sequence[float], which: Iterable[int]) -> list[float | None]:
    """The given percentiles of `values` in ms, rounded to 0.1 (None where there are none)."""
    if not values:
        return [None for _ in which]
    if len(values) == 1:
        return [round(values[0], 1) for _ in which]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return [round(cuts[p - 1], 1) for p in which]


@dataclass(frozen=True)
class AuditCheck:
    """Every 2xx answer has exactly one audit record, and no record is left `PENDING`: what
    breaks that, by correlation id."""

    answers_2xx: int
    missing: Sequence[str]  # 2xx answers without an audit record
    duplicated: Sequence[str]  # 2xx answers with more than one
    pending: Sequence[str]  # records left PENDING (any request's)

    @classmethod
    def of(cls, correlation_ids: Sequence[str], items: Iterable[Mapping[str, str]]) -> AuditCheck:
        """`correlation_ids`: those of the 2xx answers; `items`: every audit record, each
        with at least its `correlationId` and `outcome`."""
        items = list(items)
        records = Counter(item.get("correlationId") for item in items)
        return cls(
            answers_2xx=len(correlation_ids),
            missing=[cid for cid in correlation_ids if records[cid] == 0],
            duplicated=[cid for cid in correlation_ids if records[cid] > 1],
            pending=[
                item.get("correlationId", "?")
                for item in items
                if item.get("outcome") == Outcome.PENDING
            ],
        )

    def figures(self) -> dict[str, int]:
        return {
            "answers_2xx": self.answers_2xx,
            "missing": len(self.missing),
            "duplicated": len(self.duplicated),
            "pending": len(self.pending),
        }

    def findings(self) -> list[str]:
        """One line per broken rule, with an example correlation id; none when all hold."""
        found = []
        for ids, what in (
            (self.missing, "2xx answers without an audit record"),
            (self.duplicated, "2xx answers with more than one audit record"),
            (self.pending, "audit records left PENDING"),
        ):
            if ids:
                found.append(f"{len(ids)} {what} (e.g. correlation id {ids[0]})")
        return found


def check_findings(answers: Iterable[Answer], audit: AuditCheck) -> list[str]:
    """What fails the run, a line per broken check: answers that are not 2xx (by method and
    status), then the audit check's findings; none when all hold."""
    not_2xx = Counter(f"{a.method} {a.status or 'no answer'}" for a in answers if not _is_2xx(a))
    findings = audit.findings()
    if not_2xx:
        counts = ", ".join(f"{status} x{count}" for status, count in sorted(not_2xx.items()))
        findings.insert(0, f"{sum(not_2xx.values())} answers not 2xx ({counts})")
    return findings


def _request(index: int, token: str) -> dict[str, Any]:
    """The `index`th request of a level, as keyword arguments of `requests.request`."""
    headers = {"Authorization": f"Bearer {token}", "X-Correlation-Id": str(uuid.uuid4())}
    if index % PUT_EVERY == PUT_EVERY - 1:
        offer = CATALOGUE[index % len(CATALOGUE)].offer_id
        value = "SAVED" if index // PUT_EVERY % 2 else "UNSAVED"
        headers["Idempotency-Key"] = str(uuid.uuid4())
        return {
            "method": "PUT",
            "url": f"/v1/offers/{offer}/states",
            "headers": headers,
            "json": {"states": [{"name": "SAVE", "value": value}]},
        }
    offers = [CATALOGUE[(index + n) % len(CATALOGUE)].offer_id for n in range(GET_OFFERS)]
    return {
        "method": "GET",
        "url": "/v1/offers/states",
        "headers": headers,
        "params": {"offerId": ",".join(offers)},
    }


def _send(session: requests.Session, base_url: str, request: dict[str, Any]) -> Answer:
    sent = request["headers"]["X-Correlation-Id"]
    started = time.perf_counter()
    try:
        answer = session.request(
            **{**request, "url": base_url + request["url"]}, timeout=REQUEST_TIMEOUT
        )
        status, correlation_id = answer.status_code, answer.headers.get("X-Correlation-Id", sent)
    except requests.RequestException:
        status, correlation_id = 0, sent
    return Answer(request["method"], status, (time.perf_counter() - started) * 1000, correlation_id)


def run_level(
    base_url: str, tokens: Sequence[str], concurrency: int, requests_max: int, seconds_max: float
) -> Level:
    """`concurrency` clients sending requests until `requests_max` are sent or `seconds_max`
    have passed (a request under way then is awaited), with a progress line every 2 s."""
    answers: list[Answer] = []
    lock = threading.Lock()
    next_index = iter(range(requests_max))
    started = time.monotonic()
    deadline = started + seconds_max

    def client(number: int) -> None:
        with loopback_session() as session:
            while time.monotonic() < deadline:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    return
                answer = _send(session, base_url, _request(index, tokens[number]))
                with lock:
                    answers.append(answer)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(2)
            if thread.is_alive():
                stderr_line(
                    f"concurrency {concurrency}: {len(answers)}/{requests_max} requests,"
                    f" {time.monotonic() - started:.0f} s"
                )
    return Level(concurrency, answers, time.monotonic() - started)


def audit_items(stack: LocalStack) -> list[dict[str, str]]:
    """Every record of the stack's audit table: its correlation id and outcome."""
    dynamodb = aws_clients(stack.moto_url)["dynamodb"]
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=stack.template.resource_refs["AuditTable"],
        ProjectionExpression="correlationId, outcome",
    )
    return [
        {name: value["S"] for name, value in item.items()}
        for page in pages
        for item in page["Items"]
    ]


def _is_2xx(answer: Answer) -> bool:
    return 200 <= answer.status < 300


def _limit(variable: str, default: str, kind: type[int] | type[float]) -> Any:
    raw = os.environ.get(variable, default)
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if not 0 < value < float("inf"):
        raise SystemExit(f"{variable} must be a number above 0 (got {raw!r})")
    return value


def _quiet_gateway(line: str) -> None:
    # One line per request would bury the progress: keep the gateway's other lines (a
    # function that failed or was throttled).
    if not line.startswith("gateway "):
        stderr_line(line)


def _discard(_line: str) -> None:
    """The functions' own logs and metrics (several lines a request) are not shown."""


def _table(levels: Sequence[Level]) -> str:
    header = ("concurrency", "requests", "seconds", "req/s", "p50 ms", "p95 ms", "p99 ms")
    rows: list[tuple[str, ...]] = [(*header, "cold starts", "answers")]
    for level in levels:
        f = level.figures()
        statuses = ", ".join(f"{status} x{count}" for status, count in f["statuses"].items())
        rows.append(
            (
                str(level.concurrency),
                str(f["requests"]),
                f"{f['seconds']:.1f}",
                f"{f['throughput_rps']:.1f}",
                *(str(f[key]) for key in ("p50_ms", "p95_ms", "p99_ms", "cold_starts")),
                statuses,
            )
        )
    return format_table(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make load", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", type=Path, default=RESULTS_FILE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    requests_max = _limit("LOAD_REQUESTS", "200", int)
    seconds_max = _limit("LOAD_SECONDS", "20", float)

    began = time.monotonic()
    names = [port.name for port in fields(Ports)]
    ports = Ports(**dict(zip(names, free_ports(len(names)), strict=True)))
    stderr_line("starting a local stack on free ports ...")
    stack = LocalStack(ports, log=_quiet_gateway, function_output=_discard).start()
    try:
        tokens = [stack.issuer.token(collector=collector) for collector in COLLECTORS]
        levels = []
        for concurrency in CONCURRENCY:
            stderr_line(
                f"concurrency {concurrency}: up to {requests_max} requests or {seconds_max:g} s"
            )
            before = sum(pool.started for pool in stack.pools.values())
            level = run_level(stack.gateway_url, tokens, concurrency, requests_max, seconds_max)
            started = sum(pool.started for pool in stack.pools.values()) - before
            levels.append(dataclasses.replace(level, cold_starts=started))
        # Every answer is in, so no invocation is under way: the table is as it stays.
        audit = AuditCheck.of(
            [a.correlation_id for level in levels for a in level.answers if _is_2xx(a)],
            audit_items(stack),
        )
        pools = stack.pools
    finally:
        stderr_line("stopping the local stack ...")
        stack.stop()

    answers = [a for level in levels for a in level.answers]
    findings = check_findings(answers, audit)
    figures = {
        "concurrency": {str(level.concurrency): level.figures() for level in levels},
        "mix": f"{PUT_EVERY - 1} GET : 1 PUT",
        "requests_max": requests_max,
        "seconds_max": seconds_max,
        "max_environments": {name: pool.max_environments for name, pool in pools.items()},
        "environments_started": {name: pool.started for name, pool in pools.items()},
        "audit": audit.figures(),
    }
    write_load(figures, args.results)

    print(_table(levels))
    print()
    print(
        "environments started: "
        + ", ".join(
            f"{name} {pool.started} (cap {pool.max_environments})" for name, pool in pools.items()
        )
    )
    took = time.monotonic() - began
    if findings:
        print(f"load: FAILED: {'; '.join(findings)} ({args.results.name} written, {took:.0f} s)")
        return 1
    print(
        f"load: {len(answers)} requests, all 2xx, each with exactly one audit record, none left"
        f" PENDING; {args.results.name} written ({took:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
