"""The repo documents itself: every document the code, the tests and the published OpenAPI text
name is a file in the repo, and the text shipped to partners names no internal document."""

from __future__ import annotations

import re
import subprocess

from local.template import ROOT

_DOCUMENT = re.compile(r"[A-Za-z0-9_./-]+\.md\b")


def _tracked(*patterns: str) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--", *patterns], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return listed.stdout.split()


def test_every_document_named_in_code_tests_and_openapi_is_in_the_repo():
    tracked = set(_tracked())
    missing = {
        f"{path}: {name}"
        for path in _tracked("*.py", "*.json", "*.js", "Makefile", "*.toml", "*.yaml")
        for name in _DOCUMENT.findall((ROOT / path).read_text(errors="replace"))
        if name not in tracked and not any(t.endswith("/" + name) for t in tracked)
    }
    assert not missing, sorted(missing)


def test_the_openapi_document_names_no_document():
    assert _DOCUMENT.findall((ROOT / "openapi.json").read_text()) == []
