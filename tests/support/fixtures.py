"""The fixtures every test folder may use, registered once as a pytest plugin (the root
conftest's `pytest_plugins`). One name, one meaning across the suite:

- `sandbox_server`: a running AIR MILES sandbox (`local.sandbox.Sandbox`), one per module;
- `sandbox_control`: the control client (`SandboxControl`) of that sandbox, reset to its seed
  for the test;
- `aws`, `deployed`, `get_state`, `update_state`, `reconcile_pending`: the functions
  in-process, AWS through moto (`mock_aws`, resources created from template.yaml), AIR MILES
  through `sandbox_control`; `refresher`: the token refresher in-process, behind a local Lambda
  Invoke API (without it a function's Invoke fails, and it fetches a token of its own);
- `aws_calls`: every AWS call made from the test's start on, by clients made from then on;
- `iam`: a real IAM policy evaluator (iam-simulate) over the template as SAM translates it,
  one per session (tests/support/iam.py);
- `stack`: the whole local stack as a subprocess (`RunningStack`), one per module, its sandbox
  reset to its seed for the test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from local.sandbox import Sandbox
from tests.support import leaks
from tests.support.functions import Function
from tests.support.iam import Evaluator, translated_template
from tests.support.inprocess import FAKE_AWS, Deployed, InProcessRefresher, fresh_boto3_session
from tests.support.permissions import recorded_aws_calls
from tests.support.sandbox_control import SandboxControl
from tests.support.stack import RunningStack, listening, start_stack

# ------------------------------------------------------------------ the sandbox


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[Sandbox]:
    with Sandbox(port=0) as server:
        yield server


@pytest.fixture
def sandbox_control(sandbox_server: Sandbox) -> Iterator[SandboxControl]:
    """The running sandbox's control API, reset to its seed for this test."""
    control = SandboxControl(sandbox_server.url)
    control.reset()
    yield control
    control.clear_faults()  # releases any connection a `timeout` fault still holds


# ------------------------------------------------------------------ the functions in-process


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for every AWS call, with fake credentials and a fresh boto3 session."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    fresh_boto3_session()
    with mock_aws():
        yield


@pytest.fixture
def deployed(aws: None, sandbox_control: SandboxControl) -> Iterator[Deployed]:
    """The template's resources in moto, pointed at the sandbox; its tables are handed to the
    leak check afterwards."""
    resources = Deployed.create(sandbox_control.url)
    yield resources
    if resources.refresher is not None:
        resources.refresher.stop()
    resources.record_tables()


@pytest.fixture
def refresher(deployed: Deployed) -> InProcessRefresher:
    """The stack's token refresher, in-process behind a local Lambda Invoke API: the functions
    started from now on ask it for tokens (without it, their Invoke fails: moto runs no
    function, and each fetches a token of its own)."""
    deployed.refresher = InProcessRefresher(deployed)
    return deployed.refresher


@pytest.fixture
def aws_calls(deployed: Deployed) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """(IAM action, request parameters) of every AWS call made by clients created from now on,
    after the stack's resources exist: the functions' own (they make theirs on first use)."""
    fresh_boto3_session()
    with recorded_aws_calls() as recorded:
        yield recorded
    fresh_boto3_session()


@pytest.fixture(scope="session")
def iam(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Evaluator]:
    """iam-simulate in one Node process for the session, and template.yaml as SAM translates
    it: `iam.policies(deployed.template)`, then `iam.decide(simulations)`."""
    evaluator = Evaluator(translated_template(tmp_path_factory.mktemp("iam")))
    yield evaluator
    evaluator.close()


@pytest.fixture
def environments(
    refresher: InProcessRefresher, deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., list[Function]]:
    """`environments(n, function=…, **env)`: n execution environments of a function (each its
    own module, service and clients, initialised), asking `refresher` for tokens, patient
    with AIR MILES (a 12 s budget: an invocation of PATIENT_TIMEOUT waits 6 s for a token),
    and `env` over the stack's environment."""

    def start(count: int, function: str = "GetStateFunction", **env: str) -> list[Function]:
        patient = {
            "AIRMILES_TOTAL_BUDGET": "12",
            "AIRMILES_CONNECT_TIMEOUT": "2",  # the deployed defaults: the sandbox in this
            "AIRMILES_READ_TIMEOUT": "5",  # process shares its cores with the whole burst
            **env,
        }
        for name, value in {**deployed.function_environment(function), **patient}.items():
            monkeypatch.setenv(name, value)
        started = [deployed.load(function) for _ in range(count)]
        for environment in started:  # initialised, as Lambda does before the first request
            service = environment.module.service
            for name in ("dynamodb", "kms", "lambda"):
                service._token_client(name)
            service.dynamodb, service.kms  # noqa: B018 - the audit trail's, built now
        return started

    return start


@pytest.fixture
def get_state(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> Function:
    return deployed.start("GetStateFunction", monkeypatch)


@pytest.fixture
def update_state(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> Function:
    return deployed.start("UpdateStateFunction", monkeypatch)


@pytest.fixture
def reconcile_pending(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> Function:
    return deployed.start("ReconcilePendingFunction", monkeypatch)


# ------------------------------------------------------------------ the local stack


@contextlib.contextmanager
def checked_stack(
    tmp_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[RunningStack]:
    """A local stack for a module's tests; stopped after them, it must leave no leak (in its
    output or its tables) and no port open."""
    running = start_stack(tmp_path, extra_env)
    yield running
    found = running.leak_findings()  # while moto still answers
    assert running.stop() == 0
    assert not any(listening(port) for port in running.ports.values())
    found += leaks.findings("stack output", "".join(running.output))
    assert not found, "leaked: " + "; ".join(sorted(set(found)))


@pytest.fixture(scope="module")
def _module_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with checked_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture
def stack(_module_stack: RunningStack) -> RunningStack:
    """The module's local stack, its sandbox reset to its seed (faults too) for this test;
    stopped after the module, which must leave no leak and no port open."""
    _module_stack.sandbox_control.reset()
    return _module_stack
