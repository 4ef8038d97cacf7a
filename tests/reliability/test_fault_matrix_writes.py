"""The fault matrix's cells on the writes (the reads': test_fault_matrix.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.matrix import (
    CELLS,
    ROUTES,
    Cell,
    cell_params,
    matrix_sandbox,
    run_cell,
)
from tests.support.sandbox_control import SandboxControl

WRITES = [cell for cell in CELLS if ROUTES[cell.route][0] == "UpdateStateFunction"]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxControl]:
    with matrix_sandbox() as control:
        yield control


@pytest.mark.parametrize("cell", cell_params(WRITES))
def test_write_cell(cell: Cell, sandbox: SandboxControl):
    seen = run_cell(cell, sandbox)
    assert seen.problems == [], (
        f"expected {cell.expected}, observed {seen.summary} in {seen.seconds:.2f} s"
    )
