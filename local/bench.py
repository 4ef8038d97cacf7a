"""`make bench`: cold start, per-request overhead and calls to other services, measured on the
shape Lambda runs.

Cold measurements run on a twin of what `make build` ships, made by the same build code
(`local/build.py`: same requirements, same steps) for this machine's interpreter, with its
bytecode written by this interpreter. Each is a fresh interpreter (`python -B -I -S
local/bench_child.py`) whose sys.path holds only what Lambda would give the function: its code,
the layer, and the packages the Lambda runtime provides (boto3 and its dependencies, and the
runtime interface client with `snapshot_restore_py`, with their bytecode, as the runtime has
them). The twin is read-only and `-B` writes no bytecode at run
time, as on Lambda's read-only /opt and /var/task. `cold_init_no_bytecode_ms` imports the same
twin with its bytecode removed: what Lambda paid before the build shipped any. The SnapStart
first request runs the twin under that runtime interface client itself, in SnapStart mode
against a local Runtime API (`_snapstart_first_request`).

AIR MILES is the sandbox and AWS is moto in server mode, both on loopback. Results: a table on
stdout, `bench-results.json` (where `make load`'s figures, under `load`, stay as they were).
Then the same children at the CPU Lambda gives 256 to 1,769 MB (`local.bench_cpu`:
`lambda_cpu`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from local import bench_cpu, build
from local.bench_results import write_bench
from local.events import sample_event
from local.functions import Environment, FunctionSpec
from local.stack import deploy_local, start_moto, template_parameters
from local.table import format_table
from local.template import ROOT, Template

BENCH_DIR = ROOT / ".venv" / "bench"
TWIN = BENCH_DIR / "twin"  # what `make build` ships, built for this interpreter
TWIN_WITHOUT_BYTECODE = BENCH_DIR / "twin-without-bytecode"  # the same, as shipped until now
RUNTIME = BENCH_DIR / "runtime"  # what Lambda's Python runtime provides
SAM_BUILD = ROOT / ".aws-sam" / "build"  # what `make build` made
# What Lambda's Python runtime provides: boto3 with its dependencies, and its bootstrap (the
# runtime interface client, with the SnapStart hooks' registry and its JSON library).
RUNTIME_PACKAGES = (
    "awslambdaric",
    "simplejson",
    "snapshot-restore-py",
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
)
CHILD = ROOT / "local" / "bench_child.py"
# Measured for reference (printed, not in bench-results.json): the design's framework, X-Ray.
REFERENCE_KEYS = ("framework", "xray")
# Per-function cold measurements, each a dict keyed by function in bench-results.json.
PER_FUNCTION_KEYS = (
    "cold_init_no_bytecode_ms",
    "cold_init_ms",
    "cold_first_request_ms",
    "snapstart_first_request_ms",
    "baseline_floor_ms",
    "baseline_floor_io_ms",
)
TOP_IMPORTS = 10
# Fresh interpreters per cold measurement (at least 7), requests per route when warm (at least
# 1000). The environment may lower them for a quick check of the bench itself (its test).
RUNS = int(os.environ.get("BENCH_RUNS", "9"))
WARM_REQUESTS = int(os.environ.get("BENCH_REQUESTS", "1000"))
FUNCTIONS: dict[str, dict[str, Any]] = {
    "GetStateFunction": {
        "first": "get_states",
        "warm": {
            "GET /v1/offers/states": "get_states",
            "GET /v1/offers/states/find": "find_states",
            "GET /v1/offers/states/count": "count_states",
        },
    },
    "UpdateStateFunction": {
        "first": "update_states_batch",
        "warm": {
            "PUT /v1/offers/{offerId}/states": "update_offer_states",
            "PUT /v1/offers/states": "update_states_batch",
        },
    },
}


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        if "==" in line:
            name, version = line.strip().split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def prepare() -> None:
    """The runtime's packages for this machine (once, again when their pins change), and a
    fresh twin of the build, read-only, with and without its bytecode."""
    _install_runtime()
    _progress("building the twin of the Lambda artifacts for this interpreter (local/build.py)")
    for folder in (TWIN, TWIN_WITHOUT_BYTECODE):
        if folder.exists():
            _writable(folder)
            shutil.rmtree(folder)
    # The build prints a line per artifact; the bench's console is for its own progress.
    with contextlib.redirect_stdout(io.StringIO()):
        build.build_twin(TWIN)
    shutil.copytree(TWIN, TWIN_WITHOUT_BYTECODE, ignore=shutil.ignore_patterns("__pycache__"))
    for folder in (TWIN, TWIN_WITHOUT_BYTECODE):
        _read_only(folder)


def _install_runtime() -> None:
    """What Lambda's Python runtime provides (boto3 and its dependencies), for this machine,
    with its bytecode; installed again only when the pins change."""
    pins = _pins()
    requirements = [f"{name}=={pins[name]}" for name in RUNTIME_PACKAGES]
    wanted = "\n".join(requirements)
    stamp = RUNTIME / ".installed"
    if stamp.exists() and stamp.read_text() == wanted:
        return
    _progress(f"installing {RUNTIME.relative_to(ROOT)} (first run only)")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "--no-deps", "--upgrade", "--target", str(RUNTIME), *requirements], check=True
    )
    stamp.write_text(wanted)


def _read_only(folder: Path) -> None:
    """As Lambda mounts /opt and /var/task (root could still write: `-B` is what stops the
    interpreter from writing bytecode)."""
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _writable(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _child(
    request: dict[str, Any],
    environment: dict[str, str],
    *,
    importtime: bool = False,
    preexec: Callable[[], object] | None = None,
) -> dict[str, Any]:
    """One measurement in a fresh interpreter that writes no bytecode (`-B`), sees no user
    site-packages or environment paths (`-I -S`); with `importtime`, `-X importtime`'s report
    on stderr comes back as `importtime`; `preexec`: run in the child before it starts (a
    CPU group to join). A SnapStart first request runs under the runtime client instead."""
    if request["mode"] == "snapstart_first_request":
        return _snapstart_first_request(request, environment)
    with tempfile.TemporaryDirectory() as folder:
        job, result = Path(folder) / "job.json", Path(folder) / "result.json"
        job.write_text(json.dumps(request))
        flags = ["-B", "-I", "-S", *(["-X", "importtime"] if importtime else [])]
        done = subprocess.run(
            [sys.executable, *flags, str(CHILD), str(job), str(result)],
            env=environment,
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            preexec_fn=preexec,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{request['mode']} failed:\n{done.stderr[-3000:]}")
        measured = json.loads(result.read_text())
        if importtime:
            measured["importtime"] = done.stderr
        return measured


def _snapstart_first_request(
    request: dict[str, Any], environment: dict[str, str]
) -> dict[str, Any]:
    """A SnapStart cold start as Lambda runs it: the twin's function under the runtime's own
    bootstrap (`python -B -S -m awslambdaric <handler>`, the runtime interface client from the
    twin's runtime packages, no site-packages) against a local Runtime API, through the local
    stack's own environment (`local.functions.Environment`), in SnapStart mode: init and the
    before-snapshot hooks, then `restore/next` held until the first invocation, the
    after-restore hooks and the first request. Timed: from the invocation handed over (which
    answers `restore/next`) to its response posted. Locally the "restore" is the same process
    going on: what Lambda itself takes to restore a snapshot is not in the figure.

    With `cpu_group` (`local.bench_cpu`), the process is moved into that group while it waits
    on `restore/next`: the snapshot was taken uncapped, only the restore runs at the share."""
    code, *packages = request["sys_path"]  # the function's code, the layer, the runtime's
    context = request["context"]
    name = context["function_name"]
    spec = FunctionSpec(
        logical_id=name,
        task_root=Path(code),
        handler=environment["_HANDLER"],
        timeout=context["timeout"],
        memory=context["memory"],
        environment={**environment, "LAMBDA_TASK_ROOT": code},
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
    )
    extra_env = {
        "PYTHONPATH": os.pathsep.join(packages),
        # The SnapStart figure whatever LOCAL_SNAPSTART says for the local stack.
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
    }
    logs: list[str] = []
    event = json.loads(json.dumps(request["event"]))
    event["requestContext"]["requestId"] = str(uuid.uuid4())  # as API Gateway sends the next
    process = Environment(spec, extra_env, logs.append, python_flags=("-B", "-S"))
    try:
        process.wait_ready(limit=120)  # init, then the before-snapshot hooks: the snapshot,
        # which Lambda takes at publish time, with a longer limit than a cold start's
        if "cpu_group" in request:
            Path(request["cpu_group"]).write_text(str(process.process.pid))
        started = time.perf_counter()
        reply = process.invoke(event, str(uuid.uuid4()))
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        process.stop()  # after which its log lines are all in
    if "result" not in reply:
        raise RuntimeError(f"snapstart_first_request {name}: {reply}")
    # Without both hooks' lines (a function that registered none), the figure would not be
    # SnapStart's: a restore that prepared nothing.
    for hook in ("before-snapshot", "after-restore"):
        if not any(f"SnapStart: {hook} hook ran" in line for line in logs):
            raise RuntimeError(f"snapstart_first_request {name}: no {hook} hook ran")
    return {"ms": elapsed, "status": reply["result"]["statusCode"]}


def _floor_spec(function: str, sandbox_url: str, refs: dict[str, str]) -> dict[str, Any]:
    event = sample_event(FUNCTIONS[function]["first"])
    spec: dict[str, Any] = {
        "secret_id": refs["AirMilesSecret"],
        "pseudonym_key": refs["PseudonymKey"],
        "table": refs["AuditTable"],
        "token_url": f"{sandbox_url}/oauth/token",
        "collector": "80000000110",
    }
    if event["requestContext"]["http"]["method"] == "GET":
        ids = event["queryStringParameters"]["offerId"].split(",")
        spec.update(
            method="GET", url=f"{sandbox_url}/offers/state-reader/v1/get", params={"offerId": ids}
        )
    else:
        spec.update(
            method="PUT", url=f"{sandbox_url}/offers/state-writer/v1/put", body=event["body"]
        )
    return spec


def run() -> tuple[dict[str, Any], dict[str, Any]]:
    """(the results for bench-results.json, the reference measurements)."""
    from local.sandbox import Sandbox

    layer = _built_layer()  # before minutes of measuring
    prepare()
    sandbox = Sandbox(port=0).start()
    moto, moto_url = start_moto()
    try:
        template = deploy_local(template_parameters(sandbox.url, "http://127.0.0.1:3004"), moto_url)
        return _measure(template, sandbox.url, moto_url, layer)
    finally:
        moto.stop()
        sandbox.stop()


# One cold measurement: its result key, its function (None: not one function's), the child's
# request and its environment.
ColdJob = tuple[str, str | None, dict[str, Any], dict[str, str]]
# One function's warm run: the function, its plan (FUNCTIONS), sys.path, context, environment.
WarmJob = tuple[str, dict[str, Any], list[str], dict[str, Any], dict[str, str]]


def _measure(
    template: Template, sandbox_url: str, moto_url: str, layer: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Planned first, then measured in phases: cold starts, warm requests, sizes, each
    function's import costs, and the same children at Lambda's CPU."""
    refs = template.resource_refs
    cold, warm_jobs, cpu_jobs = _plan(template, sandbox_url, moto_url)
    results, reference = _cold_starts(cold)
    results.update(_warm(warm_jobs, refs["AuditTable"], sandbox_url))
    results["layer_unzipped_mb"] = build.unzipped_size_mb(layer)
    results.update(shipped_bytecode())
    for function, _, sys_path, _, environment in warm_jobs:
        measured = _child({"mode": "cold_init", "sys_path": sys_path}, environment, importtime=True)
        reference[f"imports {function}"] = expensive_imports(measured["importtime"])
    results = _rounded(results)
    results["lambda_cpu"] = bench_cpu.measure(
        cpu_jobs,
        sandbox_url,
        refs["AuditTable"],
        lambda request, environment, join: _child(request, environment, preexec=join),
        _progress,
    )
    return results, reference


def _plan(
    template: Template, sandbox_url: str, moto_url: str
) -> tuple[list[ColdJob], list[WarmJob], list[bench_cpu.FunctionJob]]:
    """Every measurement the bench makes: (cold, warm, at Lambda's CPU)."""
    refs = template.resource_refs
    runtime_path = [str(TWIN / "layer" / "python"), str(RUNTIME)]
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    cold: list[ColdJob] = [
        (
            "baseline_boto3_import_ms",
            None,
            {"mode": "boto3_import", "sys_path": [str(RUNTIME)]},
            base_env,
        ),
        ("framework", None, {"mode": "framework_import", "sys_path": runtime_path}, base_env),
        ("xray", None, {"mode": "xray_import", "sys_path": runtime_path}, base_env),
    ]
    warm_jobs: list[WarmJob] = []
    cpu_jobs = []
    for function, plan in FUNCTIONS.items():
        spec = FunctionSpec.from_template(template, function, moto_url)
        environment = {**base_env, **spec.environment}
        sys_path = _function_path(TWIN, function)
        context = {"function_name": function, "memory": spec.memory, "timeout": spec.timeout}
        first = {"event": sample_event(plan["first"]), "context": context}
        floor = {"sys_path": runtime_path, "floor": _floor_spec(function, sandbox_url, refs)}
        cold += [
            (
                "cold_init_no_bytecode_ms",
                function,
                {"mode": "cold_init", "sys_path": _function_path(TWIN_WITHOUT_BYTECODE, function)},
                environment,
            ),
            ("cold_init_ms", function, {"mode": "cold_init", "sys_path": sys_path}, environment),
            (
                "cold_first_request_ms",
                function,
                {"mode": "cold_first_request", "sys_path": sys_path, **first},
                environment,
            ),
            (
                "snapstart_first_request_ms",
                function,
                {"mode": "snapstart_first_request", "sys_path": sys_path, **first},
                environment,
            ),
            ("baseline_floor_ms", function, {"mode": "floor", **floor}, environment),
            ("baseline_floor_io_ms", function, {"mode": "floor_io", **floor}, environment),
        ]
        warm_jobs.append((function, plan, sys_path, context, environment))
        # At Lambda's CPU: the first request's route, cold and warm.
        route = next(route for route, name in plan["warm"].items() if name == plan["first"])
        cpu_jobs.append(
            bench_cpu.FunctionJob(
                function, sys_path, environment, spec.timeout, route, sample_event(plan["first"])
            )
        )
    return cold, warm_jobs, cpu_jobs


def _cold_starts(cold: list[ColdJob]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The median of each cold measurement: (results, reference)."""
    # Rounds, each running every measurement once, so that the machine's drift (2 shared
    # cores) falls on all of them alike; the first round only warms the bytecode caches.
    samples: dict[tuple[str, str | None], list[float]] = {}
    for round_number in range(RUNS + 1):
        _progress(
            f"cold starts: round {round_number}/{RUNS}{' (warm-up)' if round_number == 0 else ''}"
        )
        for result_key, measured_function, request, environment in cold:
            measured = _child(request, environment)
            if measured.get("status", 200) != 200:
                raise RuntimeError(
                    f"{result_key} {measured_function}: the request answered {measured['status']}"
                )
            if round_number:
                samples.setdefault((result_key, measured_function), []).append(measured["ms"])
    results: dict[str, Any] = {key: {} for key in PER_FUNCTION_KEYS}
    reference: dict[str, Any] = {}
    for (result_key, measured_function), values in samples.items():
        median = statistics.median(values)
        if result_key in REFERENCE_KEYS:
            reference[result_key] = median
        elif measured_function is None:
            results[result_key] = median
        else:
            results[result_key][measured_function] = median
    return results, reference


def _warm(warm_jobs: list[WarmJob], audit_table: str, sandbox_url: str) -> dict[str, Any]:
    """WARM_REQUESTS per route in one environment per function: the overhead per route, the
    peak memory per function, and the calls to other services per request."""
    overhead: dict[str, dict[str, float]] = {}
    peak_rss: dict[str, float] = {}
    first_thousand: list[dict[str, int]] = []
    audit: dict[str, list[float]] = {"read": [], "write": []}
    for function, plan, sys_path, context, environment in warm_jobs:
        _progress(f"{function}: {WARM_REQUESTS} warm requests per route in one environment")
        warm = _child(
            {
                "mode": "warm",
                "sys_path": sys_path,
                "routes": {route: sample_event(name) for route, name in plan["warm"].items()},
                "requests": WARM_REQUESTS,
                "warmup": 20,
                "context": context,
                "audit_table": audit_table,
                "sandbox_url": sandbox_url,
                "window": min(1000, WARM_REQUESTS),
            },
            environment,
        )
        for route, numbers in warm["routes"].items():
            if numbers["statuses"] != [200]:
                raise RuntimeError(f"{route} answered {numbers['statuses']}")
            overhead[route] = {"p50": numbers["p50"], "p99": numbers["p99"]}
            kind = "read" if route.startswith("GET") else "write"
            audit[kind].append(numbers["audit_writes_per_request"])
        first_thousand.append(warm["first_thousand"])
        peak_rss[function] = warm["peak_rss_mb"]
    return {
        "warm_overhead_ms": overhead,
        "peak_rss_mb": peak_rss,
        "token_requests_per_1000": max(f["token_requests"] for f in first_thousand),
        "secret_reads_per_1000": max(f["secret_reads"] for f in first_thousand),
        "audit_writes_per_read": max(audit["read"]),
        "audit_writes_per_write": max(audit["write"]),
    }


def _function_path(twin: Path, function: str) -> list[str]:
    """A function's sys.path as Lambda builds it: its code, the layer, the runtime's packages."""
    return [str(twin / function), str(twin / "layer" / "python"), str(RUNTIME)]


def _built_layer() -> Path:
    layer = SAM_BUILD / "OfferStateLayer"
    if not layer.exists():
        raise RuntimeError("no built layer: run `make build` first (make bench does)")
    return layer


def shipped_bytecode() -> dict[str, dict[str, int]]:
    """`layer_bytecode` and `function_bytecode`, read from what `make build` made."""
    shipped = build.shipped_bytecode(SAM_BUILD)
    return {"layer_bytecode": shipped["layer"], "function_bytecode": shipped["functions"]}


_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)")  # own time (us), module


def expensive_imports(report: str, top: int = TOP_IMPORTS) -> list[tuple[str, float]]:
    """The `top` modules whose own import (without the modules they import) took longest, in
    ms, from a `-X importtime` report."""
    own = [
        (match[2], int(match[1]) / 1000)
        for match in map(_IMPORT_LINE.match, report.splitlines())
        if match
    ]
    return sorted(own, key=lambda row: row[1], reverse=True)[:top]


def _rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return round(value, 2) if isinstance(value, float) else value


def targets(r: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(what, measured, target, met)."""
    rows = []
    boto3_ms = r["baseline_boto3_import_ms"]
    for function in FUNCTIONS:
        init = r["cold_init_ms"][function]
        rows.append(
            (
                f"cold init {function}",
                f"{init:.0f} ms = {init / boto3_ms:.2f}x boto3 import",
                "<= 1.5x",
                init <= 1.5 * boto3_ms,
            )
        )
        first, floor = r["cold_first_request_ms"][function], r["baseline_floor_ms"][function]
        rows.append(
            (
                f"cold first request {function}",
                f"{first:.0f} ms = {first / floor:.2f}x floor ({floor:.0f} ms)",
                "<= 1.3x",
                first <= 1.3 * floor,
            )
        )
        restored = r["snapstart_first_request_ms"][function]
        floor_io = r["baseline_floor_io_ms"][function]
        rows.append(
            (
                f"SnapStart first request {function}",
                f"{restored:.0f} ms = {restored / floor_io:.2f}x floor I/O ({floor_io:.0f} ms)",
                "<= 1.2x",
                restored <= 1.2 * floor_io,
            )
        )
    for route, p in r["warm_overhead_ms"].items():
        rows.append(
            (
                f"warm overhead {route}",
                f"p50 {p['p50']:.2f} ms, p99 {p['p99']:.2f} ms",
                "p50 <= 2, p99 <= 10",
                p["p50"] <= 2 and p["p99"] <= 10,
            )
        )
    # (what, key, target, check) of the targets measured once for the whole run.
    single: list[tuple[str, str, str, Callable[[float], bool]]] = [
        ("token requests per 1000", "token_requests_per_1000", "<= 1", lambda v: v <= 1),
        ("secret reads per 1000", "secret_reads_per_1000", "<= 1", lambda v: v <= 1),
        ("audit writes per read", "audit_writes_per_read", "= 1", lambda v: v == 1),
        ("audit writes per write", "audit_writes_per_write", "= 2", lambda v: v == 2),
    ]
    rows += [(what, str(r[key]), target, check(r[key])) for what, key, target, check in single]
    layer_mb = r["layer_unzipped_mb"]
    rows.append(("layer unzipped", f"{layer_mb:.1f} MB", "<= 20 MB", layer_mb <= 20))
    for key, what in (("layer_bytecode", "layer"), ("function_bytecode", "functions")):
        shipped = r[key]
        rows.append(
            (
                f"3.13 bytecode shipped, {what}",
                f"{shipped['with_bytecode']} of {shipped['modules']} modules",
                "all",
                shipped["with_bytecode"] == shipped["modules"],
            )
        )
    for function, rss in r["peak_rss_mb"].items():
        rows.append(
            (
                f"peak RSS {function}",
                f"{rss:.0f} MB after {WARM_REQUESTS}+ requests per route",
                "<= 128 MB",
                rss <= 128,
            )
        )
    return rows


def main() -> int:
    started = time.monotonic()
    results, reference = run()
    write_bench(results)  # keeps `make load`'s figures
    checked = targets(results)
    print(
        format_table(
            [
                ("measure", "measured", "target", "met"),
                *[
                    (what, measured, target, "yes" if ok else "NO")
                    for what, measured, target, ok in checked
                ],
            ]
        )
    )
    met = sum(1 for *_, ok in checked if ok)
    print()
    print(
        format_table(
            [
                ("cold init", *FUNCTIONS),
                (
                    "with the shipped bytecode",
                    *[f"{results['cold_init_ms'][f]:.0f} ms" for f in FUNCTIONS],
                ),
                (
                    "without bytecode (as shipped before)",
                    *[f"{results['cold_init_no_bytecode_ms'][f]:.0f} ms" for f in FUNCTIONS],
                ),
            ]
        )
    )
    for function in FUNCTIONS:
        print()
        rows = [(f"{function}: its {TOP_IMPORTS} most expensive imports", "own time")]
        rows += [(name, f"{ms:.1f} ms") for name, ms in reference[f"imports {function}"]]
        print(format_table(rows))
    print()
    framework_ms, xray_ms = reference["framework"], reference["xray"]
    print(
        f"for reference: importing pydantic and Powertools' Logger, Metrics and Event Handler"
        f" with validation takes {framework_ms:.0f} ms of each cold start; in Lambda, where"
        f" tracing is on, the X-Ray SDK adds {xray_ms:.0f} ms to the first request"
    )
    print()
    print(bench_cpu.table(results["lambda_cpu"]))
    took = time.monotonic() - started
    print(f"{met} of {len(checked)} targets met; bench-results.json written ({took:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
