"""`make bench` at the CPU Lambda gives (`lambda_cpu` in bench-results.json): for MemorySize
256, 512, 1,024 and 1,769 MB, each at its share of a core by Lambda's rule (MemorySize / 1769,
`local.cpu_share`), both functions' cold init, first request without and with SnapStart, warm
p50 (the whole invocation, what Lambda bills) and the GB-seconds a million warm requests bill.

Each measurement is one of the bench's own children (`local/bench_child.py` on the twin of the
build) in a cgroup of its own at the share; the sandbox and moto stay outside it, as AIR MILES
and AWS are other machines. Cold figures are the median of `BENCH_LAMBDA_RUNS` (3)
interleaved rounds; warm, `BENCH_LAMBDA_REQUESTS` (100) requests of the function's first
route in one environment, after 20 more. `BENCH_LAMBDA_MEMORY` (`256,512,1024,1769`) picks the
sizes. Where this machine cannot cap CPU, the figures are not made up:
`{"capped": false, "reason": …}`.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from local.cpu_share import (
    LAMBDA_MB_PER_VCPU,
    PERIOD_US,
    CannotCap,
    CpuLimit,
    check_share,
    lambda_share,
    machine_cores,
    usable,
)
from local.table import format_table

MEMORY_SIZES = tuple(
    int(mb) for mb in os.environ.get("BENCH_LAMBDA_MEMORY", "256,512,1024,1769").split(",")
)
RUNS = int(os.environ.get("BENCH_LAMBDA_RUNS", "3"))
WARM_REQUESTS = int(os.environ.get("BENCH_LAMBDA_REQUESTS", "100"))
# Result key: bench_child mode (`snapstart_first_request`: the runtime client, see
# local.bench's _snapstart_first_request).
COLD = {
    "cold_init_ms": "cold_init",
    "cold_first_request_ms": "cold_first_request",
    "snapstart_first_request_ms": "snapstart_first_request",
}
# These children start in their group (from exec: their clock includes the interpreter's
# imports). The others join it where their clock starts (`cpu_group` in the request): a
# SnapStart environment is moved into it by the bench while it waits on restore/next (after
# init and its before-snapshot hooks), warm requests join it themselves after the cold start
# (bench_child's _join_cpu_group). What comes before is not measured, and at 256 MB's share it
# took most of the part's time.
FROM_EXEC = {"cold_init", "cold_first_request"}
# One measurement in a fresh interpreter: (request, environment, preexec_fn) -> its result.
Child = Callable[[dict[str, Any], dict[str, str], Callable[[], object] | None], dict[str, Any]]


@dataclass(frozen=True)
class FunctionJob:
    """What the bench runs of one function: its sys.path on the twin, its environment, its
    Timeout, and the route (with its sample event) of its first and warm requests."""

    function: str
    sys_path: list[str]
    environment: dict[str, str]
    timeout: float
    route: str
    event: dict[str, Any]


def billed_ms(duration_ms: float) -> int:
    """Lambda bills an invocation's duration per millisecond, rounded up."""
    return math.ceil(duration_ms)


def gb_seconds_per_million(memory_mb: int, duration_ms: float) -> float:
    """GB-seconds a million invocations of `duration_ms` bill at `memory_mb` MB."""
    return memory_mb / 1024 * billed_ms(duration_ms) / 1000 * 1_000_000


def measure(
    jobs: Sequence[FunctionJob],
    sandbox_url: str,
    audit_table: str,
    child: Child,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """`lambda_cpu` for bench-results.json."""
    started = time.monotonic()
    try:
        hierarchy = usable()
    except CannotCap as exc:
        progress(f"lambda_cpu: not measured, cannot cap CPU here ({exc})")
        return {"capped": False, "reason": str(exc)}
    cores = machine_cores()
    limits = {mb: CpuLimit(hierarchy, check_share(lambda_share(mb), cores)) for mb in MEMORY_SIZES}

    def run(job: FunctionJob, mb: int, request: dict[str, Any]) -> dict[str, Any]:
        # The function sees the MemorySize it runs at, as Lambda tells it.
        environment = {**job.environment, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(mb)}
        context = {"function_name": job.function, "memory": mb, "timeout": job.timeout}
        full = {"sys_path": job.sys_path, "event": job.event, "context": context, **request}
        with limits[mb].group() as group:
            if request["mode"] in FROM_EXEC:
                with group.joining() as join:
                    measured = child(full, environment, join)
            else:
                measured = child(
                    {**full, "cpu_group": str(group.path / "cgroup.procs")}, environment, None
                )
            if group.stat()["nr_periods"] == 0:  # no figure measured outside its quota
                raise RuntimeError(f"{job.function} {request['mode']} never ran in its CPU group")
        if measured.get("status", 200) != 200:
            raise RuntimeError(f"{job.function} at {mb} MB answered {measured['status']}")
        return measured

    # Rounds, each running every cold measurement once, so the machine's drift falls on all
    # sizes alike; the main bench already warmed the caches.
    samples: dict[tuple[int, str, str], list[float]] = {}
    for round_number in range(1, RUNS + 1):
        for mb in MEMORY_SIZES:
            share = limits[mb].share
            progress(f"lambda_cpu: round {round_number}/{RUNS}, {mb} MB at {share:.3f} of a core")
            for job in jobs:
                for key, mode in COLD.items():
                    measured = run(job, mb, {"mode": mode})
                    samples.setdefault((mb, job.function, key), []).append(measured["ms"])
    sizes: dict[str, Any] = {}
    for mb in MEMORY_SIZES:
        figures: dict[str, Any] = {"cpu_share": round(limits[mb].share, 4)}
        for job in jobs:
            progress(f"lambda_cpu: {mb} MB, {job.function}: {WARM_REQUESTS} warm requests")
            warm = run(
                job,
                mb,
                {
                    "mode": "warm",
                    "routes": {job.route: job.event},
                    "requests": WARM_REQUESTS,
                    "warmup": 20,
                    "audit_table": audit_table,
                    "sandbox_url": sandbox_url,
                    "window": min(1000, WARM_REQUESTS),
                },
            )["routes"][job.route]
            if warm["statuses"] != [200]:
                raise RuntimeError(f"{job.route} at {mb} MB answered {warm['statuses']}")
            p50 = round(warm["duration_p50"], 2)  # billed from the figure recorded
            figures[job.function] = {
                **{
                    key: round(statistics.median(samples[(mb, job.function, key)]), 1)
                    for key in COLD
                },
                "warm_p50_ms": p50,
                "warm_billed_ms": billed_ms(p50),
                "gb_seconds_per_million": round(gb_seconds_per_million(mb, p50), 1),
            }
        sizes[str(mb)] = figures
    took = round(time.monotonic() - started)
    progress(f"lambda_cpu: measured in {took} s")
    return {
        "capped": True,
        "cgroup": str(hierarchy),
        "mb_per_vcpu": LAMBDA_MB_PER_VCPU,
        "period_us": PERIOD_US,
        "runs": RUNS,
        "warm_requests": WARM_REQUESTS,
        "seconds": took,
        "memory_mb": sizes,
    }


def table(results: dict[str, Any]) -> str:
    """The console's view of `lambda_cpu`."""
    if not results["capped"]:
        return f"at Lambda's CPU: not measured, cannot cap CPU here ({results['reason']})"
    rows: list[tuple[str, ...]] = [
        (
            "MemorySize",
            "share",
            "function",
            "cold init",
            "first request",
            "SnapStart first",
            "warm p50",
            "GB-s / 1M warm",
        )
    ]
    for mb, figures in results["memory_mb"].items():
        for function, f in figures.items():
            if function == "cpu_share":
                continue
            rows.append(
                (
                    f"{mb} MB",
                    f"{figures['cpu_share']:.3f}",
                    function,
                    f"{f['cold_init_ms']:.0f} ms",
                    f"{f['cold_first_request_ms']:.0f} ms",
                    f"{f['snapstart_first_request_ms']:.0f} ms",
                    f"{f['warm_p50_ms']:.1f} ms",
                    f"{f['gb_seconds_per_million']:,.0f}",
                )
            )
    return "\n".join(
        [
            f"at Lambda's CPU (MemorySize / {results['mb_per_vcpu']} of a core,"
            f" {results['cgroup']}; cold: median of {results['runs']} runs;"
            f" warm: {results['warm_requests']} requests; {results['seconds']} s)",
            format_table(rows),
            "warm p50: the whole invocation, loopback calls to the sandbox and moto included"
            " (AIR MILES and AWS take longer), billed rounded up to the ms; GB-s / 1M warm ="
            " MemorySize / 1024 x billed seconds x 1,000,000",
        ]
    )
