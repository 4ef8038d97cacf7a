"""A program run in a fresh interpreter, as a function module's process: for the checks that
act on `sys.modules` or a function module's import, once per process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from local.functions import LAYER_PYTHON
from local.template import ROOT

# What the functions read at import (any well-formed values).
SETTINGS = {
    "AIRMILES_ENV": "uat",
    "SECRET_ID": "secret",
    "AUDIT_TABLE_NAME": "audit",
    "PSEUDONYM_KEY_ID": "key",
    "IDEMPOTENCY_TABLE_NAME": "idempotency",
    "AWS_REGION": "us-east-1",
}


def run_fresh(program: str, *args: str, cwd: Path = ROOT) -> Any:
    """What `program` (given `args`) printed last, as JSON; run in `cwd` (a function's
    folder: its `app` importable) with the layer and the repository importable."""
    done = subprocess.run(
        [sys.executable, "-c", program, *args],
        cwd=cwd,
        env={"PYTHONPATH": f"{LAYER_PYTHON}:{ROOT}", "PATH": "/usr/bin:/bin", **SETTINGS},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
