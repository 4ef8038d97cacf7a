"""The fault matrix's cells on the reads (tests/reliability/matrix.py; `make faults` prints
it). The writes' cells are in test_fault_matrix_writes.py: two files, so that the two test
workers share the matrix."""

from __future__ import annotations

import pytest

from tests.reliability.matrix import CELLS, ROUTES, Cell, assert_cell_holds
from tests.support.sandbox_control import SandboxControl

READS = [cell for cell in CELLS if ROUTES[cell.route][0] == "GetStateFunction"]


def test_the_matrix_is_wide_and_split_in_two():
    writes = [cell for cell in CELLS if ROUTES[cell.route][0] == "UpdateStateFunction"]
    assert len(READS) + len(writes) == len(CELLS)
    assert len(CELLS) >= 40
    assert len({cell.name for cell in CELLS}) == len(CELLS)
    modes = {fault.get("mode") for cell in CELLS for fault in cell.faults}
    assert modes == {
        "status",
        "delay",
        "timeout",
        "malformed",
        "reset",
        "truncate",
        "drip",
        "badGzip",
    }
    statuses = {fault.get("status") for cell in CELLS for fault in cell.faults} - {None}
    assert {500, 502, 503, 429, 401, 404, 400} <= statuses
    endpoints = {fault["endpoint"] for cell in CELLS for fault in cell.faults}
    assert endpoints == {"token", "health", "get", "find", "count", "put"}
    # The wire faults on every endpoint; a PUT's change stored and not, under each that can.
    for mode in ("truncate", "drip", "badGzip"):
        assert {f["endpoint"] for c in CELLS for f in c.faults if f["mode"] == mode} == endpoints
    applied = {(f["mode"], f["applied"]) for c in CELLS for f in c.faults if "applied" in f}
    assert applied == {
        (mode, value)
        for mode in ("delay", "timeout", "reset", "truncate", "drip")
        for value in (True, False)
    }


@pytest.mark.parametrize("cell", READS, ids=[cell.name for cell in READS])
def test_a_read_under_each_fault_gets_the_answer_audit_calls_and_time_of_its_cell(
    cell: Cell, matrix_sandbox_control: SandboxControl
):
    assert_cell_holds(cell, matrix_sandbox_control)
