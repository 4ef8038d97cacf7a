from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import leaks
from tests.support.stack import RunningStack, listening, start_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    found = running.leak_findings()  # while moto still answers
    assert running.stop() == 0
    assert not any(listening(port) for port in running.ports.values())
    found += leaks.findings("stack output", "".join(running.output))
    assert not found, "leaked: " + "; ".join(sorted(set(found)))


@pytest.fixture(autouse=True)
def fresh_sandbox(stack: RunningStack) -> None:
    stack.sandbox.reset()  # faults too
