"""The local contract's commands: `make token`, `make invoke`, and stopping `make run`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import boto3
import jwt
import pytest
import requests

from local.template import ROOT
from tests.support.pending import begin_change, writer_at
from tests.support.stack import (
    RunningStack,
    child_pids,
    clean_env,
    free_ports,
    listening,
    stack_env,
    start_stack,
)


def _make(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", *args],
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def _make_in_background(
    target: str, env: dict[str, str], stop: signal.Signals, wait: float
) -> Iterator[subprocess.Popen[str]]:
    """`make <target>` in a session of its own (output on its stdout), then `stop` sent to
    its whole process group, as a terminal sends Ctrl-C, and up to `wait` seconds for it."""
    process = subprocess.Popen(
        ["make", target],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        os.killpg(process.pid, stop)
        process.wait(wait)


def _claims(stack: RunningStack, token: str) -> dict:
    key = jwt.PyJWKSet.from_dict(stack.issuer.jwks()).keys[0].key
    return jwt.decode(token, key, algorithms=["RS256"], audience="offer-state-gateway")


@pytest.mark.parametrize(
    ("args", "collector", "scopes"),
    [
        (["COLLECTOR=80000000110"], "80000000110", "offers/state.read offers/state.write"),
        (["M2M=1"], None, "offers/state.read offers/state.write offers/state.m2m"),
        (["COLLECTOR=84095202006", "SCOPES=offers/state.read"], "84095202006", "offers/state.read"),
    ],
)
def test_make_token_prints_a_token_the_gateway_accepts(
    stack: RunningStack, args, collector, scopes
):
    made = _make("token", *args, env=stack.env)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    claims = _claims(stack, token)
    assert claims.get("collector_number") == collector
    assert claims["scope"] == scopes
    assert claims["iss"] == stack.issuer.issuer
    headers = {"Collector-Number": "80000000110"} if collector is None else {}
    answer = stack.request("GET", "/v1/offers/states/count", token, headers=headers)
    assert answer.status_code == 200


def test_make_token_refuses_a_bad_collector(stack: RunningStack):
    made = _make("token", "COLLECTOR=123", env=stack.env)
    assert made.returncode != 0
    assert "11 digits" in made.stderr


def test_make_invoke_runs_the_function_on_its_own():
    sandbox_port, moto_port = free_ports(2)  # nothing listens there: it starts its own
    made = _make(
        "invoke",
        "FUNCTION=GetStateFunction",
        "EVENT=events/get_states.json",
        env={"SANDBOX_PORT": str(sandbox_port), "MOTO_PORT": str(moto_port)},
    )
    assert made.returncode == 0, made.stderr
    answer = json.loads(made.stdout)
    assert answer["statusCode"] == 200
    assert len(json.loads(answer["body"])["offers"]) == 3
    assert "started a sandbox" in made.stderr


def test_make_invoke_uses_the_running_stack(stack: RunningStack):
    before = stack.sandbox_control.calls()["put"]
    made = _make(
        "invoke",
        "FUNCTION=UpdateStateFunction",
        "EVENT=events/update_states_batch.json",
        env=stack.env,
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["statusCode"] == 200
    assert "using the running local stack" in made.stderr
    assert stack.sandbox_control.calls()["put"] == before + 1


def test_make_invoke_runs_the_reconciler_on_the_running_stacks_audit_table(stack: RunningStack):
    # A PUT's PENDING item from a day ago, never finished: in the local stack's table, whose
    # PendingIndex the stack made from template.yaml.
    table = stack.table("AuditTable")
    dynamodb = boto3.client(  # low-level: the writer serializes its own items
        "dynamodb",
        endpoint_url=table.meta.client.meta.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    stale, _ = begin_change(writer_at(dynamodb, table.name, timedelta(days=1)))

    made = _make(
        "invoke",
        "FUNCTION=ReconcilePendingFunction",
        "EVENT=events/scheduled_reconcile.json",
        env=stack.env,
    )

    assert made.returncode == 0, made.stderr
    assert "using the running local stack" in made.stderr
    assert json.loads(made.stdout) == {"reconciled": 1, "finishedMeanwhile": 0, "complete": True}
    item = table.get_item(Key={"pk": stale.pk, "sk": stale.sk})["Item"]
    assert (item["outcome"], item["errorCode"]) == ("UNKNOWN", "OUTCOME_NOT_RECORDED")


def test_make_invoke_fails_when_the_handler_raises(tmp_path: Path, stack: RunningStack):
    broken = tmp_path / "not-an-api-event.json"
    broken.write_text('{"hello": "world"}')
    made = _make("invoke", "FUNCTION=GetStateFunction", f"EVENT={broken}", env=stack.env)
    assert made.returncode != 0  # the script exits 1; make reports it as 2
    assert made.stdout.strip(), f"no error document on stdout; stderr: {made.stderr[-3000:]}"
    error = json.loads(made.stdout)  # as Lambda reports it, from the runtime client
    assert {"errorType", "errorMessage", "stackTrace"} <= set(error)  # passed on whole
    assert error["stackTrace"] and all(isinstance(line, str) for line in error["stackTrace"])
    assert f"[ERROR] {error['errorType']}: " in made.stderr  # the runtime client's report


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_stack_stops_everything(tmp_path: Path, sig: signal.Signals):
    running = start_stack(tmp_path)
    children = child_pids(running.process.pid)
    assert children, "the function environments run as child processes"
    running.process.send_signal(sig)
    assert running.process.wait(20) == 0
    assert not any(listening(port) for port in running.ports.values())
    alive = [pid for pid in children if Path(f"/proc/{pid}").exists()]
    assert alive == []
    assert "stopped" in "".join(running.output)


def test_make_run_reaches_ready_and_ctrl_c_stops_it_quietly(tmp_path: Path):
    """The README's first command, as a person runs it: `make run`, then Ctrl-C (SIGINT to
    the whole foreground process group, the function environments included). Every port on
    a free one: a developer's own stack may hold the defaults."""
    ports, env = stack_env(tmp_path)
    started = time.monotonic()
    lines: list[str] = []
    ready = threading.Event()
    with _make_in_background("run", env, signal.SIGINT, 30) as process:

        def drain() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if "ready" in line:
                    ready.set()

        drainer = threading.Thread(target=drain, daemon=True)
        drainer.start()
        assert ready.wait(60), "".join(lines)
        assert time.monotonic() - started < 60
        text = "".join(lines)
        assert text.count("curl -s") == 2
        assert "Authorization: Bearer ey" in text
    drainer.join(10)  # to the end of the output
    assert not any(listening(port) for port in ports.values())
    text = "".join(lines)
    assert "stopped" in text
    assert "Traceback" not in text
    assert "KeyboardInterrupt" not in text


def test_make_sandbox_serves_the_sandbox_alone():
    (port,) = free_ports(1)
    env = clean_env(SANDBOX_PORT=str(port))
    with _make_in_background("sandbox", env, signal.SIGTERM, 20) as process:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "ready" in first
        assert f"127.0.0.1:{port}" in first
        assert (
            requests.get(f"http://127.0.0.1:{port}/_sandbox/calls", timeout=5).json()["token"] == 0
        )
    assert not listening(port)


def test_make_help_lists_the_local_contract():
    listed = _make("help", env={}).stdout
    for command in ("run", "test", "token", "invoke", "sandbox", "lint"):
        assert f"\n{command} " in "\n" + listed


def test_make_audit_reads_the_local_stack(stack: RunningStack):
    token = stack.token("80000000110")
    answer = stack.request("GET", "/v1/offers/states/count", token)
    correlation = answer.headers["X-Correlation-Id"]

    table = _make("audit", "COLLECTOR=80000000110", env=stack.env)
    assert table.returncode == 0, table.stderr
    assert correlation in table.stdout
    assert "80000000110" not in table.stdout
    as_json = _make("audit", f"CORRELATION={correlation}", "JSON=1", env=stack.env)
    assert as_json.returncode == 0, as_json.stderr
    [record] = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert (record["action"], record["outcome"]) == ("COUNT_STATES", "SUCCEEDED")


def test_make_audit_refuses_bad_input(stack: RunningStack):
    made = _make("audit", "COLLECTOR=12345", env=stack.env)
    assert made.returncode != 0
    assert "error: a collector number is 11 digits" in made.stderr


def test_the_gateway_serves_the_openapi_document(stack: RunningStack):
    answer = stack.request("GET", "/openapi.json")
    assert answer.status_code == 200
    assert answer.json() == json.loads((ROOT / "openapi.json").read_text())


def test_make_faults_prints_the_matrix_and_a_summary():
    chosen = "GET health: 50"  # the health route's 500, 502 and two 503 cells
    made = _make("faults", env={"FAULTS": chosen}, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    lines = made.stdout.splitlines()
    assert lines[0].split() == ["scenario", "expected", "observed", "pass"]
    assert [line.split(":")[0] for line in lines[2:-1]] == ["GET health"] * 4
    assert all(line.rstrip().endswith("pass") for line in lines[2:-1])
    assert lines[-1] == "4 passed, 0 failed"
