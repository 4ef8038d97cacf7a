"""Fixtures shared by every test folder: the AIR MILES sandbox on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.sandbox import Sandbox
from tests.support.sandbox_control import SandboxControl


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[Sandbox]:
    with Sandbox(port=0) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Iterator[SandboxControl]:
    """The running sandbox's control API, reset to its seed for this test."""
    control = SandboxControl(sandbox_server.url)
    control.reset()
    yield control
    control.clear_faults()  # releases any connection a `timeout` fault still holds
