"""DynamoDB misbehaving for one function's client (`function.module.service.dynamodb`), for
the tests of what the functions make of it."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.exceptions import EndpointConnectionError


def refuse(client: Any, operation: str, table: str) -> None:
    """`operation` (e.g. "UpdateItem") on `table` fails as if DynamoDB could not be reached,
    every attempt."""

    def unreachable(request: Any, **_: Any) -> None:
        if json.loads(request.body or b"{}").get("TableName") == table:
            raise EndpointConnectionError(endpoint_url=request.url)

    client.meta.events.register_first(f"before-send.dynamodb.{operation}", unreachable)


def stored_by_an_earlier_attempt(client: Any, table: str) -> None:
    """Every PutItem on `table` finds its item already there, as when botocore retries a
    PutItem whose first attempt was stored but whose answer was lost: the retry fails its
    own condition (attribute_not_exists)."""
    other = boto3.session.Session().client("dynamodb")  # a session of its own: not recorded

    def store_first(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == table:
            other.put_item(**params)

    client.meta.events.register("before-parameter-build.dynamodb.PutItem", store_first)
