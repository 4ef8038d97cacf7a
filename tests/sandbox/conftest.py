"""The sandbox's own tests: the module's sandbox (`sandbox_server`), reset to its seed before
every test, and one HTTP session per module for the calls under test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.support.sandbox_control import SandboxControl


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture(autouse=True)
def _fresh_sandbox(sandbox_control: SandboxControl) -> None:
    """Every test starts from the seed, without faults (`sandbox_control` resets it)."""
