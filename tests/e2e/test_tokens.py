"""`make tokens` itself (`python -m local.tokens`), on a small plan: many environments of both
functions with churn over three short token lifetimes, then the bursts (no token and a slow
token endpoint, every token revoked, the store's reads throttled), the token requests counted
at the sandbox, the figures written beside the others. (It counts tokens, which the design
fixes; it asserts no time.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from local.template import ROOT
from tests.support.stack import clean_env

pytestmark = pytest.mark.fleet  # run alone (the Makefile's `test`)


def test_tokens_counts_one_deployments_token_requests_per_lifetime_and_keeps_other_figures(
    tmp_path,
):
    results = tmp_path / "bench-results.json"
    results.write_text(json.dumps({"cold_init_ms": {"GetStateFunction": 1.0}, "load": {}}))
    done = subprocess.run(
        [sys.executable, "-m", "local.tokens", "--results", str(results)],
        cwd=ROOT,
        env=clean_env(
            TOKENS_ENVIRONMENTS="8",
            TOKENS_TTL="10",  # replaced with 2 s left, the margin 1 s under it
            TOKENS_LIFETIMES="3",
            TOKENS_CHURN_SECONDS="4",
            TOKENS_MARGIN="1",
            PYTHONPATH=str(ROOT / "layers" / "offer_state" / "python"),
        ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    written = json.loads(results.read_text())
    # The other commands' figures stay.
    assert written["cold_init_ms"] == {"GetStateFunction": 1.0}
    assert written["load"] == {}
    tokens = written["tokens"]
    assert written["token_requests_per_lifetime"] == tokens["token_requests_per_lifetime"]
    environments = tokens["environments"]
    assert environments["at_a_time"] == 8
    assert environments["per_function"] == {"GetStateFunction": 4, "UpdateStateFunction": 4}
    # Churn: an environment of each function replaced every 4 s of a 30 s run.
    assert environments["churn"]["retired"] >= 8
    assert environments["started"] == 8 + environments["churn"]["started"]
    assert tokens["lifetimes"] >= 3
    assert set(tokens["statuses"]) == {"200"} and tokens["requests"] > 8
    # The figure is the sandbox's count over the run's lifetimes, and within the target; a
    # token an environment would have been many more.
    assert tokens["token_requests"] >= 2  # they expire: the refresher replaces them
    per_lifetime = tokens["token_requests_per_lifetime"]
    assert abs(per_lifetime * tokens["lifetimes"] - tokens["token_requests"]) < 0.1
    assert tokens["token_requests_per_lifetime"] <= 1.25
    assert tokens["per_environment_estimate"]["token_requests"] > 2 * tokens["token_requests"]
    scenarios = tokens["scenarios"]
    assert set(scenarios) == {"steady", "cold_burst_slow_endpoint", "revoked", "store_throttled"}
    assert scenarios["steady"]["token_requests"] == tokens["token_requests"]
    for name, scenario in scenarios.items():
        assert set(scenario) >= {"token_requests", "token_requests_per_lifetime", "statuses"}
        assert all(status.startswith("2") for status in scenario["statuses"]), name
        if name != "steady":
            assert scenario["token_requests"] <= 2, name
            assert sum(scenario["statuses"].values()) == 8, name  # one answer each
    assert "every target met" in done.stdout
    assert "steady: 3 token lifetimes of 10 s" in done.stderr  # progress as it goes
