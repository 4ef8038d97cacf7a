"""Every example the README and docs/ mark `<!-- readme-test: … -->` runs as printed, against a
stack on free ports (its host:port pairs rewritten to them)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from local.template import ROOT
from tests.support.stack import RunningStack, clean_env

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(
    r"<!-- readme-test: (?P<needs>[^>]+?) -->\s*```(?P<lang>\w+)\n(?P<code>.*?)```", re.S
)
# (document, what it needs, language, code)
BLOCKS = [
    (document.name, m["needs"], m["lang"], m["code"])
    for document in DOCUMENTS
    for m in _BLOCK.finditer(document.read_text())
]
FAILURE_MARKS = ('"error"', "Unauthorized", "Not Found", "Internal Server Error", "Traceback")


def _rewrite(code: str, stack: RunningStack) -> str:
    ports = {
        "3000": "GATEWAY_PORT",
        "3001": "SANDBOX_PORT",
        "3002": "MOTO_PORT",
        "3004": "ISSUER_PORT",
    }
    for default, name in ports.items():
        code = code.replace(f"127.0.0.1:{default}", f"127.0.0.1:{stack.ports[name]}")
    return code


def test_the_readme_has_runnable_examples():
    in_readme = {needs for document, needs, _, _ in BLOCKS if document == "README.md"}
    assert in_readme == {"make run", "make sandbox"}
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize(
    ("document", "needs", "lang", "code"),
    BLOCKS,
    ids=[f"{d}-{n}-{i}" for i, (d, n, _, _) in enumerate(BLOCKS)],
)
def test_readme_example_runs_as_printed(
    stack: RunningStack, document: str, needs: str, lang: str, code: str
):
    script = _rewrite(code, stack)
    if lang == "sh":
        command = ["bash", "-euo", "pipefail", "-c", script]
    else:
        command = [sys.executable, "-c", script]
    env = {**clean_env(**stack.env), "PYTHONPATH": str(ROOT / "layers" / "offer_state" / "python")}
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.strip(), "the example printed nothing"
    for mark in FAILURE_MARKS:
        assert mark not in done.stdout, done.stdout
