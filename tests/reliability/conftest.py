"""The fault matrix's sandbox (tests/reliability/matrix.py), one per module: each cell resets
it itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.matrix import open_matrix_sandbox
from tests.support.sandbox_control import SandboxControl


@pytest.fixture(scope="module")
def matrix_sandbox_control() -> Iterator[SandboxControl]:
    with open_matrix_sandbox() as control:
        yield control
