"""The two functions in-process, as in tests/functions: AWS through moto (`mock_aws`, the
resources created from template.yaml), AIR MILES through a sandbox over loopback HTTP.

Usable from pytest fixtures and from plain scripts (the fault matrix of `make faults`).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from local.lambda_api import LambdaApi
from local.resources import provision
from local.sandbox import AUDIENCE, CLIENT_ID, CLIENT_SECRET, TOKEN_PATH
from local.template import Template
from tests.support import leaks
from tests.support.context import lambda_context
from tests.support.functions import MACHINE_CLIENT, Function, load_handler_module
from tests.support.tables import LEAK_CHECKED_TABLES, StackTables

# Faster failures than production: fault tests stay quick. The budget counts from the start of
# the invocation, so it holds a cold start's work (clients, the secret, the audit item) on a
# busy machine as well as three 0.5 s attempts.
FAST_UPSTREAM = {
    "AIRMILES_TOTAL_BUDGET": "3",
    "AIRMILES_READ_TIMEOUT": "0.5",
    "AIRMILES_CONNECT_TIMEOUT": "0.5",
    "AIRMILES_BACKOFF_FACTOR": "0.01",
    "AIRMILES_PUT_MIN_SECONDS": "0.25",
}
# An invocation that may wait for the refresher's token with a patient budget (`environments`).
PATIENT_TIMEOUT = 20.0
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


_BOTOCORE_LOADER = None


def fresh_boto3_session() -> None:
    """A new default boto3 session (no handlers, no clients from before) that shares one
    botocore loader, so service models are read from disk once per process, not per test."""
    global _BOTOCORE_LOADER
    import botocore.loaders
    import botocore.session

    if _BOTOCORE_LOADER is None:
        _BOTOCORE_LOADER = botocore.loaders.create_loader()
    core = botocore.session.get_session()
    core.register_component("data_loader", _BOTOCORE_LOADER)
    boto3.setup_default_session(botocore_session=core)


@contextmanager
def environment(values: Mapping[str, str], remove: tuple[str, ...] = ()) -> Iterator[None]:
    """Set (and remove) environment variables for the duration, then restore them."""
    saved = dict(os.environ)
    for name in remove:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def stack_parameters(sandbox_url: str) -> dict[str, str]:
    return {
        "AirMilesBaseUrl": sandbox_url,
        "AirMilesTokenUrl": sandbox_url + TOKEN_PATH,
        "JwtIssuer": "https://issuer.test/",
        "JwtAudience": "offer-state-gateway",
        "OriginClient": "external:test-partner:web",
        "MachineClientIds": MACHINE_CLIENT,
    }


@dataclass
class Deployed(StackTables):
    """The local stand-in of a deployed stack (inside `mock_aws`)."""

    template: Template
    refs: dict[str, str]
    refresher: InProcessRefresher | None = field(default=None, repr=False)

    @classmethod
    def create(cls, sandbox_url: str) -> Deployed:
        parameters = stack_parameters(sandbox_url)
        refs = provision(
            Template(parameters=parameters),
            dynamodb=boto3.client("dynamodb"),
            secretsmanager=boto3.client("secretsmanager"),
            kms=boto3.client("kms"),
            prefix="test",
            credentials={
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "audience": AUDIENCE,
            },
        )
        deployed = cls(Template(parameters=parameters, resource_refs=refs), refs)
        leaks.remember_secret(deployed.secret()["audit_pepper"])
        # moto's Lambda (which runs no function: a function's ask for a token fails) loads its
        # backend at its first call, half a second: now, not inside a timed invocation.
        boto3.client("lambda").list_functions()
        return deployed

    @property
    def pseudonym_key_arn(self) -> str:
        """The ARN of the stack's own pseudonym key (`PseudonymKey`)."""
        return self.template.resolve({"Fn::GetAtt": ["PseudonymKey", "Arn"]})

    def with_parameters(self, **overrides: str) -> Deployed:
        """The same resources under other parameter values (a redeploy: a rotated key ...)."""
        parameters = {**self.template.parameters, **overrides}
        template = Template(parameters=parameters, resource_refs=self.refs)
        return Deployed(template, self.refs, self.refresher)

    def new_pseudonym_key(self) -> str:
        """A second HMAC key in this account, as a partner creates one to rotate: its ARN."""
        created = boto3.client("kms").create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
        return created["KeyMetadata"]["Arn"]

    def record_tables(self) -> None:
        """Hand every item of the audit, idempotency and token tables to the leak check."""
        for table in LEAK_CHECKED_TABLES:
            # A test may have deleted or blocked the table: then there is nothing to check.
            with contextlib.suppress(Exception):
                leaks.record(table, self.table_text(table))

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """The template's environment of the function, with quicker AIR MILES settings; its
        Lambda client reaches the in-process refresher where one runs."""
        environment = {**self.template.function_environment(logical_id), **FAST_UPSTREAM}
        if self.refresher is not None:
            environment["AWS_ENDPOINT_URL_LAMBDA"] = self.refresher.api.url
        return environment

    def token_item(self) -> dict[str, Any]:
        """The token's item as DynamoDB holds it (typed attribute values), or {}."""
        from offer_state.token_store import ITEM_KEY

        return (
            boto3.client("dynamodb")
            .get_item(
                TableName=self.refs["TokenTable"], Key={"pk": {"S": ITEM_KEY}}, ConsistentRead=True
            )
            .get("Item", {})
        )

    def start(self, logical_id: str, monkeypatch: Any) -> Function:
        """A fresh container of the function with the environment this stack gives it
        (set through `monkeypatch`, a pytest MonkeyPatch, so the test's end restores it)."""
        for name, value in self.function_environment(logical_id).items():
            monkeypatch.setenv(name, value)
        return self.load(logical_id)

    def load(self, logical_id: str) -> Function:
        """A fresh container of the function: its module imported anew (the environment
        must already be set: `function_environment`)."""
        props = self.template.function_properties(logical_id)
        return Function(
            logical_id,
            load_handler_module(self.template, logical_id),
            timeout=float(self.template.resolve(props["Timeout"])),
            memory=int(props["MemorySize"]),
        )

    def table(self, logical_id: str) -> Any:
        return boto3.resource("dynamodb").Table(self.refs[logical_id])

    def secret(self) -> dict[str, str]:
        secrets = boto3.client("secretsmanager")
        value = secrets.get_secret_value(SecretId=self.refs["AirMilesSecret"])
        return json.loads(value["SecretString"])

    def put_secret(self, text: str) -> None:
        secrets = boto3.client("secretsmanager")
        secrets.put_secret_value(SecretId=self.refs["AirMilesSecret"], SecretString=text)


class InProcessRefresher:
    """The token refresher of a `Deployed` stack, in this process, behind a local Lambda Invoke
    API (local/lambda_api.py) that the functions' Lambda clients are pointed at. Up to
    `environments` invocations run at once, each in an environment of its own (a
    `TokenRefresher` over its own service and AWS clients), reused when idle. Its AWS clients
    come from a boto3 session of their own: the calls a test records are the functions'.
    `runs` holds every invocation's reply."""

    def __init__(self, deployed: Deployed, environments: int = 4) -> None:
        self.deployed = deployed
        self.overrides: dict[str, str] = {}
        self.runs: list[dict[str, Any]] = []
        self.down = False  # every invocation fails, as a refresher that cannot start
        self.hold = threading.Event()  # cleared: invocations wait until it is set
        self.hold.set()
        self._idle: list[Any] = []
        self._slots = threading.Semaphore(environments)
        self._lock = threading.Lock()
        props = deployed.template.function_properties("TokenRefresherFunction")
        self.name = deployed.template.resolve(props["FunctionName"])
        self.timeout = float(deployed.template.resolve(props["Timeout"]))
        self._idle.append(self._environment())  # one warm: its AWS clients built
        self.api = LambdaApi({self.name: self.invoke}).start()

    def configure(self, **environment: str) -> None:
        """Environment variables over the template's, for the environments started from now."""
        self.overrides.update(environment)
        self._idle.clear()

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        self.hold.wait(60)
        with self._slots:
            refresher = self._environment()
            context = lambda_context("TokenRefresherFunction", 256, self.timeout)
            try:
                if self.down:
                    raise RuntimeError("the refresher is down")
                reply: dict[str, Any] = {"result": refresher.run(event, context)}
            except Exception as exc:  # noqa: BLE001 - the reply says, as Lambda's does
                reply = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            with self._lock:
                self._idle.append(refresher)
                self.runs.append(reply)
        return reply

    def outcomes(self) -> list[str]:
        return [r["result"]["outcome"] if "result" in r else r["errorType"] for r in self.runs]

    def _environment(self) -> Any:
        from botocore.config import Config

        from offer_state.config import GatewaySettings
        from offer_state.deadlines import bound_by_invocation
        from offer_state.refresher import TokenRefresher
        from offer_state.service import OfferStateService

        with self._lock:
            if self._idle:
                return self._idle.pop()
        # As deployed (patient with AIR MILES: nobody waits on a run), not FAST_UPSTREAM.
        environment = {
            **self.deployed.template.function_environment("TokenRefresherFunction"),
            **self.overrides,
        }
        service = OfferStateService(GatewaySettings.from_env(environment))
        session = boto3.session.Session()
        config = Config(retries={"mode": "standard", "total_max_attempts": 1})
        for name in ("dynamodb", "kms", "secretsmanager"):
            service.__dict__[name] = bound_by_invocation(session.client(name, config=config))
        return TokenRefresher(service)

    def stop(self) -> None:
        self.hold.set()
        self.api.stop()
