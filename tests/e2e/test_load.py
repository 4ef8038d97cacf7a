"""`make load` itself (`python -m local.load`), with a few requests per level: it runs the
three levels through a stack of its own, checks the audit trail and writes its figures
beside `make bench`'s. (Timings are never asserted: few requests check the machinery.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from local.template import ROOT
from tests.support.stack import clean_env

pytestmark = pytest.mark.fleet  # run alone (the Makefile's `test`)

LEVEL_KEYS = {
    "requests",
    "seconds",
    "throughput_rps",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "statuses",
    "cold_starts",
}
FUNCTIONS = {"GetStateFunction", "UpdateStateFunction"}


def test_load_runs_three_levels_checks_the_audit_trail_and_keeps_the_bench_figures(tmp_path):
    results = tmp_path / "bench-results.json"
    results.write_text(json.dumps({"cold_init_ms": {"GetStateFunction": 1.0}}))
    done = subprocess.run(
        [sys.executable, "-m", "local.load", "--results", str(results)],
        cwd=ROOT,
        env=clean_env(
            LOAD_REQUESTS="8",
            PYTHONPATH=str(ROOT / "layers" / "offer_state" / "python"),
            DEV_ISSUER_KEY_FILE=str(tmp_path / "dev-issuer-key.pem"),
        ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    written = json.loads(results.read_text())
    assert written["cold_init_ms"] == {"GetStateFunction": 1.0}  # make bench's figures stay
    load = written["load"]
    assert set(load) == {
        "concurrency",
        "mix",
        "requests_max",
        "seconds_max",
        "max_environments",
        "environments_started",
        "audit",
    }
    assert set(load["concurrency"]) == {"1", "4", "16"}
    for level in load["concurrency"].values():
        assert set(level) == LEVEL_KEYS
        assert level["requests"] == 8
        # Three GETs to one PUT, every one answered 200.
        assert level["statuses"] == {"GET 200": 6, "PUT 200": 2}
        assert level["throughput_rps"] > 0
        assert 0 < level["p50_ms"] <= level["p95_ms"] <= level["p99_ms"]
    assert load["audit"] == {"answers_2xx": 24, "missing": 0, "duplicated": 0, "pending": 0}
    assert set(load["max_environments"]) == set(load["environments_started"]) == FUNCTIONS
    for name, started in load["environments_started"].items():
        assert 1 <= started <= load["max_environments"][name]
    # One environment of each function is started before the first level: the rest during them.
    cold_starts = sum(level["cold_starts"] for level in load["concurrency"].values())
    assert cold_starts == sum(load["environments_started"].values()) - len(FUNCTIONS)
    assert "concurrency  requests" in done.stdout  # the table
    assert done.stdout.strip().splitlines()[-1].startswith("load: 24 requests, all 2xx")
    assert "concurrency 16: up to 8 requests" in done.stderr  # progress
