"""AWS misbehaving for one client (a function's `function.module.service.dynamodb`, an
environment's own), for the tests of what the code makes of it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from moto.core.botocore_stubber import MockRawResponse

# What each service answers when it throttles a caller.
THROTTLED = {"dynamodb": "ProvisionedThroughputExceededException", "kms": "ThrottlingException"}


def refuse(client: Any, operation: str, table: str) -> None:
    """`operation` (e.g. "UpdateItem") on `table` fails as if DynamoDB could not be reached,
    every attempt."""

    def unreachable(request: Any, **_: Any) -> None:
        if json.loads(request.body or b"{}").get("TableName") == table:
            raise EndpointConnectionError(endpoint_url=request.url)

    client.meta.events.register_first(f"before-send.dynamodb.{operation}", unreachable)


def error_answer(code: str) -> tuple[AWSResponse, dict[str, Any]]:
    """An error answer with `code`, as a `before-call` handler gives it: botocore takes it as
    the service's answer, and moto never sees the request."""
    http = AWSResponse("https://aws.invalid", 400, {}, MockRawResponse(b"{}"))
    return http, {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }


def unreachable(client: Any, operation: str) -> Callable[[], None]:
    """Every `operation` (e.g. "GetItem", "Decrypt") of `client` fails as if its service could
    not be reached, until the function returned is called."""
    service = client.meta.service_model.service_id.hyphenize()

    def refuse_all(request: Any, **_: Any) -> None:
        raise EndpointConnectionError(endpoint_url=request.url)

    event = f"before-send.{service}.{operation}"
    client.meta.events.register_first(event, refuse_all)
    return lambda: client.meta.events.unregister(event, refuse_all)


def throttled(client: Any, operation: str) -> Callable[[], None]:
    """Every `operation` of `client` is refused as throttled (what botocore raises once its own
    retries are spent), until the function returned is called."""
    service = client.meta.service_model.service_id.hyphenize()
    answer = error_answer(THROTTLED[service])

    def refuse_all(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return answer

    event = f"before-call.{service}.{operation}"
    client.meta.events.register_first(event, refuse_all)
    return lambda: client.meta.events.unregister(event, refuse_all)


def stored_by_an_earlier_attempt(client: Any, table: str) -> None:
    """Every PutItem on `table` finds its item already there, as when botocore retries a
    PutItem whose first attempt was stored but whose answer was lost: the retry fails its
    own condition (attribute_not_exists)."""
    other = boto3.session.Session().client("dynamodb")  # a session of its own: not recorded

    def store_first(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == table:
            other.put_item(**params)

    client.meta.events.register("before-parameter-build.dynamodb.PutItem", store_first)


def stored_then_answers_lost(client: Any, table: str) -> None:
    """Every PutItem on `table` is stored by its first attempt, and no attempt's answer ever
    comes back (a read timeout each time): botocore's retries run out, and the caller sees the
    write fail although its item is there."""
    stored_by_an_earlier_attempt(client, table)
    answers_lost(client, "PutItem", table)


def answers_lost(client: Any, operation: str, table: str) -> None:
    """No attempt of `operation` on `table` gets its answer (a read timeout each time)."""

    def answer_lost(request: Any, **_: Any) -> None:
        if json.loads(request.body or b"{}").get("TableName") == table:
            raise ReadTimeoutError(endpoint_url=request.url)

    client.meta.events.register_first(f"before-send.dynamodb.{operation}", answer_lost)
