"""The two functions, in-process: AWS through moto (`mock_aws`, resources created from
template.yaml), AIR MILES through the sandbox over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer
from moto import mock_aws

from local.resources import provision
from local.sandbox import AUDIENCE, CLIENT_ID, CLIENT_SECRET, TOKEN_PATH
from local.template import Template
from tests.support.functions import Function, load_handler_module
from tests.support.sandbox_control import SandboxControl


@dataclass
class Deployed:
    """The local stand-in of a deployed stack."""

    template: Template
    refs: dict[str, str]

    def table_items(self, logical_id: str) -> list[dict[str, Any]]:
        dynamodb = boto3.client("dynamodb")
        items = dynamodb.scan(TableName=self.refs[logical_id])["Items"]
        deserialize = TypeDeserializer().deserialize
        return [{k: deserialize(v) for k, v in item.items()} for item in items]

    def audit_items(self) -> list[dict[str, Any]]:
        return sorted(self.table_items("AuditTable"), key=lambda i: i["sk"])

    def secret(self) -> dict[str, str]:
        secrets = boto3.client("secretsmanager")
        value = secrets.get_secret_value(SecretId=self.refs["AirMilesSecret"])
        return json.loads(value["SecretString"])

    def put_secret(self, text: str) -> None:
        secrets = boto3.client("secretsmanager")
        secrets.put_secret_value(SecretId=self.refs["AirMilesSecret"], SecretString=text)


def stack_parameters(sandbox_url: str) -> dict[str, str]:
    return {
        "AirMilesBaseUrl": sandbox_url,
        "AirMilesTokenUrl": sandbox_url + TOKEN_PATH,
        "JwtIssuer": "https://issuer.test/",
        "JwtAudience": "offer-state-gateway",
        "OriginClient": "external:test-partner:web",
    }


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with mock_aws():
        yield


@pytest.fixture
def deployed(aws: None, sandbox: SandboxControl) -> Deployed:
    parameters = stack_parameters(sandbox.url)
    refs = provision(
        Template(parameters=parameters),
        dynamodb=boto3.client("dynamodb"),
        secretsmanager=boto3.client("secretsmanager"),
        prefix="test",
        credentials={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "audience": AUDIENCE},
    )
    return Deployed(Template(parameters=parameters, resource_refs=refs), refs)


def _function(deployed: Deployed, monkeypatch: pytest.MonkeyPatch, logical_id: str) -> Function:
    for name, value in deployed.template.function_environment(logical_id).items():
        monkeypatch.setenv(name, value)
    # Faster failures than production (the ratios stay): fault tests stay quick.
    monkeypatch.setenv("AIRMILES_TOTAL_BUDGET", "2")
    monkeypatch.setenv("AIRMILES_READ_TIMEOUT", "0.5")
    monkeypatch.setenv("AIRMILES_CONNECT_TIMEOUT", "0.5")
    monkeypatch.setenv("AIRMILES_BACKOFF_FACTOR", "0.01")
    props = deployed.template.function_properties(logical_id)
    return Function(
        logical_id,
        load_handler_module(deployed.template, logical_id),
        timeout=float(props["Timeout"]),
        memory=int(props["MemorySize"]),
    )


@pytest.fixture
def get_state(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> Function:
    return _function(deployed, monkeypatch, "GetStateFunction")


@pytest.fixture
def update_state(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> Function:
    return _function(deployed, monkeypatch, "UpdateStateFunction")
