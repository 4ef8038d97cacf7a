"""The artifacts `sam build` makes from this machine, built once per test process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from local.template import ROOT
from tests.support.stack import clean_env

SAM = ROOT / ".venv" / "tools" / "sam" / "bin" / "sam"


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of `sam build`: OfferStateLayer, GetStateFunction, UpdateStateFunction."""
    if not SAM.exists():
        pytest.fail("SAM CLI is missing: run `make venv`")
    out = tmp_path_factory.mktemp("sam")
    done = subprocess.run(
        [str(SAM), "build", "--build-dir", str(out / "build"), "--cache-dir", str(out / "cache")],
        cwd=ROOT,
        env=clean_env(SAM_CLI_TELEMETRY="0", PYTHON=sys.executable),  # as make build does
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out / "build"
