"""`bench-results.json`: `make bench` writes its figures at the top level, `make load` its own
under `load`, `make tokens` (which `make bench` runs too) its own under `tokens`, with its
headline `token_requests_per_lifetime` at the top level. Each command rewrites only what it
measures, so none erases another's."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from local.template import ROOT

RESULTS_FILE = ROOT / "bench-results.json"
LOAD_KEY = "load"
TOKENS_KEY = "tokens"
TOKENS_HEADLINE = "token_requests_per_lifetime"
# What `make bench`'s own figures leave alone.
OTHERS = (LOAD_KEY, TOKENS_KEY, TOKENS_HEADLINE)


def write_bench(results: Mapping[str, Any], path: Path = RESULTS_FILE) -> None:
    """`make bench`'s figures replace the file's, but for `make load`'s and `make tokens`',
    which stay."""
    kept = {key: value for key, value in _read(path).items() if key in OTHERS}
    _write(path, {**results, **kept})


def write_load(figures: Mapping[str, Any], path: Path = RESULTS_FILE) -> None:
    """`make load`'s figures replace the file's `load`; the rest stays."""
    _write(path, {**_read(path), LOAD_KEY: figures})


def write_tokens(figures: Mapping[str, Any], path: Path = RESULTS_FILE) -> None:
    """`make tokens`' figures replace the file's `tokens` and its headline (the figures'
    `token_requests_per_lifetime`); the rest stays."""
    _write(path, {**_read(path), TOKENS_HEADLINE: figures[TOKENS_HEADLINE], TOKENS_KEY: figures})


def _read(path: Path) -> dict[str, Any]:
    # A missing or unreadable file (it is generated, never edited) is one with no figures.
    try:
        results = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return results if isinstance(results, dict) else {}


def _write(path: Path, results: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(results, indent=2) + "\n")
