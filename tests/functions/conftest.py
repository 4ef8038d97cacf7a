"""The two functions, in-process: AWS through moto (`mock_aws`, resources created from
template.yaml), AIR MILES through the sandbox over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from tests.support.functions import Function
from tests.support.inprocess import FAKE_AWS, Deployed, fresh_boto3_session
from tests.support.sandbox_control import SandboxControl


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    fresh_boto3_session()
    with mock_aws():
        yield


@pytest.fixture
def deployed(aws: None, sandbox: SandboxControl) -> Iterator[Deployed]:
    stack = Deployed.create(sandbox.url)
    yield stack
    stack.record_tables()


def _function(deployed: Deployed, monkeypatch: pytest.MonkeyPatch, logical_id: str) -> Function:
    for name, value in deployed.function_environment(logical_id).items():
        monkeypatch.setenv(name, value)
    return deployed.load(logical_id)


@pytest.fixture
def get_state(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> Function:
    return _function(deployed, monkeypatch, "GetStateFunction")


@pytest.fixture
def update_state(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> Function:
    return _function(deployed, monkeypatch, "UpdateStateFunction")
