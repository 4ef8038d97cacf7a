"""SnapStart: the hooks each function registers with Lambda's runtime (AWS's
`snapshot_restore_py`, run by the runtime interface client's hook runner), what the
before-snapshot hook leaves in a snapshot, and what a restored environment does on its own.
In-process, for speed and for the snapshot's contents; `tests/e2e/test_local_stack.py` runs
the hooks through the runtime client itself."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.loaders
import pytest

from local.template import ROOT
from offer_state import snapstart
from offer_state.models import airmiles_answers
from tests.support import leaks
from tests.support.functions import SAVE, Function, event, offer_event
from tests.support.inprocess import Deployed, fresh_boto3_session
from tests.support.sandbox_control import SandboxControl
from tests.support.snapstart import RuntimeHooks, network_refused, reachable_strings

FUNCTIONS = ("get_state", "update_state")  # their fixtures


@pytest.fixture
def hooks() -> Iterator[RuntimeHooks]:
    registered = RuntimeHooks()
    registered.clear()
    yield registered
    registered.clear()


@pytest.fixture(params=FUNCTIONS)
def function(request: pytest.FixtureRequest, hooks: RuntimeHooks) -> Function:
    """Each function, its module imported once the registries are empty."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def container_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """AWS credentials as Lambda gives a SnapStart function: from an HTTP endpoint (so
    resolving them before the snapshot would be a network call), not from variables."""
    saved = {name: os.environ[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    for name in saved:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/credentials")
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-token")
    fresh_boto3_session()  # none resolved yet
    yield
    # Back now, not at monkeypatch's undo: the stack's teardown still reads its tables.
    for name in ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN"):
        monkeypatch.delenv(name)
    for name, value in saved.items():
        monkeypatch.setenv(name, value)
    fresh_boto3_session()


def first_event(function: Function, sandbox_control: SandboxControl) -> dict[str, Any]:
    """An event of the function's (a collector's read, or a write) on an untouched offer."""
    offer = sandbox_control.untouched_offers(1)[0]
    if function.logical_id == "GetStateFunction":
        return event("GET", "/v1/offers/states", query=[("offerId", offer)])
    return offer_event(offer, SAVE)


def test_each_function_registers_one_hook_of_each_kind(function: Function, hooks: RuntimeHooks):
    assert [(f, args) for f, args, _ in hooks.before] == [
        (snapstart.before_snapshot, (function.module.api,))
    ]
    assert [(f, args) for f, args, _ in hooks.after] == [
        (snapstart.after_restore, (function.module.api,))
    ]


def test_before_snapshot_connects_nothing(
    function: Function, hooks: RuntimeHooks, container_credentials: None
):
    with network_refused() as attempts:
        hooks.snapshot()
    assert attempts == []


def test_before_snapshot_leaves_no_secret_token_or_pepper(
    function: Function, hooks: RuntimeHooks, deployed: Deployed
):
    from aws_lambda_powertools.utilities.parameters import base

    hooks.snapshot()

    # The function's and the layer's module state, and Powertools' default providers' caches.
    modules = [m for name, m in sys.modules.items() if name.startswith("offer_state")]
    state = [vars(m) for m in [function.module, *modules]] + [base.DEFAULT_PROVIDERS]
    found = {f for text in reachable_strings(*state) for f in leaks.findings("state", text)}
    # (Collector numbers are not the point here: the client's docstring shows one.)
    assert {f for f in found if "collector number" not in f} == set()
    assert leaks.findings("pepper", deployed.secret()["audit_pepper"])  # the check would see it


def test_before_snapshot_builds_what_the_first_request_would(
    function: Function,
    hooks: RuntimeHooks,
    sandbox_control: SandboxControl,
    monkeypatch: pytest.MonkeyPatch,
):
    boto3.setup_default_session()  # as a new environment: no AWS service model loaded yet
    hooks.snapshot()
    hooks.restore()

    answers = [airmiles_answers._AirMilesAnswer]
    while answers:
        model = answers.pop()
        assert model.__pydantic_complete__, model
        answers += model.__subclasses__()
    models_read: list[str] = []
    read = botocore.loaders.JSONFileLoader.load_file

    def recording(loader: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        models_read.append(path)
        return read(loader, path, *args, **kwargs)

    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "load_file", recording)
    from aws_lambda_powertools.event_handler.openapi import dependant

    monkeypatch.setattr(dependant, "get_dependant", _never("a route's validators"))
    monkeypatch.setattr(dependant, "get_body_field", _never("a route's body validator"))
    service = function.module.service
    service.dynamodb, service.secretsmanager  # noqa: B018 - as the first request builds them
    assert models_read == []

    status, _, _ = function.call(first_event(function, sandbox_control))
    assert status == 200


def _never(what: str) -> Any:
    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError(f"{what} built at the first request, not before the snapshot")

    return fail


def test_after_restore_the_first_request_succeeds(
    function: Function, hooks: RuntimeHooks, sandbox_control: SandboxControl, deployed: Deployed
):
    hooks.snapshot()
    hooks.restore()

    status, _, body = function.call(first_event(function, sandbox_control))

    assert status == 200, body
    assert sandbox_control.calls()["token"] == 1
    [item] = [i for i in deployed.audit_items() if i["outcome"] == "SUCCEEDED"]
    assert item["upstreamStatus"] in (200, 204)


def test_after_restore_no_connection_pooled_before_the_snapshot_is_used(
    function: Function, hooks: RuntimeHooks, sandbox_control: SandboxControl
):
    service = function.module.service
    hooks.snapshot()
    # As if the environment had pooled connections before the snapshot (a pool is made
    # without connecting): to AIR MILES and to both AWS services.
    air_miles = service.client.transport.session.get_adapter(sandbox_control.url).poolmanager
    air_miles.connection_from_url(sandbox_control.url)
    clients = [service.dynamodb, service.secretsmanager]
    aws = [client._endpoint.http_session._manager for client in clients]
    for manager, client in zip(aws, clients, strict=True):
        manager.connection_from_url(client.meta.endpoint_url)

    hooks.restore()

    in_use = service.client.transport.session.get_adapter(sandbox_control.url).poolmanager
    assert (len(air_miles.pools), len(in_use.pools)) == (0, 0)
    assert [len(manager.pools) for manager in aws] == [0, 0]
    status, _, _ = function.call(first_event(function, sandbox_control))
    assert status == 200


def test_restored_environments_draw_different_jitter(function: Function, hooks: RuntimeHooks):
    transport = function.module.service.client.transport
    hooks.snapshot()

    drawn = [_in_a_restored_copy(hooks, lambda: _retry_wait(transport)) for _ in range(2)]

    assert drawn[0] != drawn[1]


def _retry_wait(transport: Any) -> float:
    """How long the transport would wait before its second retry (backoff with jitter)."""
    retry = transport._policy
    for _ in range(2):
        retry = retry.increment("GET", "http://127.0.0.1/offers")
    return retry.get_backoff_time()


def _in_a_restored_copy(hooks: RuntimeHooks, draw: Any) -> float:
    """`draw()` in a copy of this process (as an environment restored from a snapshot of it)
    once the after-restore hooks have run there."""
    reader, writer = os.pipe()
    snapshot = random.getstate()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork of a threaded process
        pid = os.fork()
    if pid == 0:  # the copy: report, then end without running the parent's cleanup
        status = 1
        try:
            # os.fork reseeds `random` in the child by itself; a restored snapshot does not.
            random.setstate(snapshot)
            hooks.restore()
            os.write(writer, json.dumps(draw()).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(writer)
    with os.fdopen(reader) as answer:
        text = answer.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and text
    return json.loads(text)


def test_with_xray_on_before_snapshot_builds_the_tracer_and_connects_nothing(deployed: Deployed):
    props = deployed.template.function_properties("GetStateFunction")
    env = {
        **deployed.function_environment("GetStateFunction"),
        "PATH": os.environ["PATH"],
        "AWS_REGION": "us-east-1",  # Lambda sets both
        "AWS_DEFAULT_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(ROOT / props["CodeUri"]),  # as in Lambda, where X-Ray is on
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers/offer_state/python"), str(ROOT)]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.snapstart", str(ROOT / props["CodeUri"] / "app.py")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"attempts": [], "tracer_built": True, "hooks": 1}
