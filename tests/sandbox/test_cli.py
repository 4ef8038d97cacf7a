"""`python -m local.sandbox`: ready line, request log, stopping on a signal."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys

import pytest
import requests

from local.sandbox import TOKEN_PATH
from local.template import ROOT
from tests.sandbox.helpers import HEALTH, token_form


def _read_line(stream, seconds: float) -> str:
    ready, _, _ = select.select([stream], [], [], seconds)
    assert ready, "no output from the sandbox"
    return stream.readline()


@pytest.mark.parametrize(
    ("signum", "port_argument"),
    [(signal.SIGTERM, ["--port", "0"]), (signal.SIGINT, [])],  # [] takes SANDBOX_PORT
)
def test_cli_prints_ready_logs_requests_and_stops_on_signal(signum, port_argument):
    env = {**os.environ, "SANDBOX_PORT": "0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "local.sandbox", "--host", "127.0.0.1", *port_argument],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None  # both PIPE
    try:
        line = _read_line(process.stdout, 15)
        assert "ready" in line
        ready = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert ready is not None
        url = ready.group(0)
        token = requests.post(url + TOKEN_PATH, data=token_form(), timeout=5).json()
        answer = requests.get(
            url + HEALTH, headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=5
        )
        assert answer.status_code == 200

        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
        stderr = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()

    assert re.search(r"POST /oauth/token 200 [\d.]+ms", stderr)
    assert re.search(r"GET /offers/state-reader/health 200 [\d.]+ms", stderr)
    assert token["access_token"] not in stderr
    assert "Bearer" not in stderr
