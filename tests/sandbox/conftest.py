"""One sandbox per test module, reset to its seed before every test."""

from __future__ import annotations

import pytest
import requests

from local.sandbox import Sandbox


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(port=0) as running:
        yield running


@pytest.fixture(scope="module")
def http():
    with requests.Session() as session:
        yield session


@pytest.fixture(autouse=True)
def _fresh_sandbox(sandbox, http):
    http.post(sandbox.url + "/_sandbox/reset", timeout=5).raise_for_status()
