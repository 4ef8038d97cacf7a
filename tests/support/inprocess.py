"""The two functions in-process, as in tests/functions: AWS through moto (`mock_aws`, the
resources created from template.yaml), AIR MILES through a sandbox over loopback HTTP.

Usable from pytest fixtures and from plain scripts (the fault matrix of `make faults`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3

from local.resources import provision
from local.sandbox import AUDIENCE, CLIENT_ID, CLIENT_SECRET, TOKEN_PATH
from local.template import Template
from tests.support import leaks
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
        return deployed

    @property
    def pseudonym_key_arn(self) -> str:
        """The ARN of the stack's own pseudonym key (`PseudonymKey`)."""
        return self.template.resolve({"Fn::GetAtt": ["PseudonymKey", "Arn"]})

    def with_parameters(self, **overrides: str) -> Deployed:
        """The same resources under other parameter values (a redeploy: a rotated key ...)."""
        parameters = {**self.template.parameters, **overrides}
        return Deployed(Template(parameters=parameters, resource_refs=self.refs), self.refs)

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
        return {**self.template.function_environment(logical_id), **FAST_UPSTREAM}

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
