"""The fault matrix's cells on the writes (the reads': test_fault_matrix.py)."""

from __future__ import annotations

import pytest

from tests.reliability.matrix import CELLS, ROUTES, Cell, assert_cell_holds
from tests.support.sandbox_control import SandboxControl

WRITES = [cell for cell in CELLS if ROUTES[cell.route][0] == "UpdateStateFunction"]


@pytest.mark.parametrize("cell", WRITES, ids=[cell.name for cell in WRITES])
def test_a_write_under_each_fault_gets_the_answer_audit_calls_and_time_of_its_cell(
    cell: Cell, matrix_sandbox_control: SandboxControl
):
    assert_cell_holds(cell, matrix_sandbox_control)
