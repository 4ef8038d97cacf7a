"""Import a built function in a fresh interpreter, on the sys.path Lambda gives it (for the
tests of the build's output, tests/template)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

from local.template import ROOT, Template

# What a test that needs `sam build` may take, its build included: pytest-timeout's 120 s
# guard against a hang is too short for the first build of a fresh clone (Node tools, Pyodide,
# the layer's wheels) on a busy 2-core machine. A guard, not a performance limit.
BUILD_TEST_TIMEOUT = 1500

# Any well-formed values do: the functions read their settings at import.
PARAMETERS = {"JwtIssuer": "https://issuer.example/", "JwtAudience": "offer-state-gateway"}
REFS = {
    "AuditTable": "audit",
    "IdempotencyTable": "idem",
    "AirMilesSecret": "arn:aws:secretsmanager:us-east-1:1:secret:s",
    "OfferStateLayer": "layer",
    "PseudonymKey": "0b9d6a1e-5c3f-4d8e-9a2b-7f1e3c5d4a60",
    "TokenTable": "token",
    "TokenKey": "5f0c2a7e-8d1b-4c3a-9e6f-2b4d7a1c9e30",
}


def run_import_script(
    script: str, function: str, function_dir: Path, layer_python: Path, *options: str
) -> list[dict[str, Any]]:
    """Run tests/support/<script> (import_built.py, or one built on it) under `python -I -S`
    plus `options`, with the environment template.yaml gives `function`; the JSON lines it
    printed (its report comes last)."""
    env = {
        **Template(parameters=PARAMETERS, resource_refs=REFS).function_environment(function),
        # Lambda sets both (botocore reads the second: the reconciler makes its client at import).
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": os.environ["PATH"],
    }
    done = subprocess.run(
        [
            # -B: importing a built artifact never writes bytecode into it (as on Lambda).
            *(sys.executable, "-B", "-I", "-S", *options),
            str(ROOT / "tests" / "support" / script),
            str(function_dir),
            str(layer_python),
            sysconfig.get_paths()["purelib"],
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
