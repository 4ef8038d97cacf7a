"""The sandbox stands in for AIR MILES in front of the layer: it must never import the layer
(`offer_state`), or a bug there could hide itself by being mirrored here."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from local.functions import LAYER_PYTHON
from local.template import ROOT

SANDBOX_DIR = ROOT / "local" / "sandbox"


def _imported_modules(path: Path) -> list[str]:
    modules = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.append(node.module)
    return modules


def test_no_sandbox_module_imports_the_layer():
    files = sorted(SANDBOX_DIR.glob("*.py"))
    assert len(files) > 10  # the scan sees the package
    offending = [
        f"{path.name}: {module}"
        for path in files
        for module in _imported_modules(path)
        if module.split(".")[0] == "offer_state"
    ]
    assert offending == []


def test_running_the_sandbox_loads_nothing_of_the_layer():
    """What the sandbox imports through other modules of ours counts too: with the layer
    importable, starting the sandbox's command loads no module of it."""
    script = (
        "import sys, local.sandbox.__main__\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'offer_state'))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={"PYTHONPATH": f"{LAYER_PYTHON}:{ROOT}"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
