"""A botocore retry that the invocation has no time for is not made, and the call ends with
what its last attempt got, whichever botocore the Lambda runtime brings (offer_state.deadlines):
recent botocore reads a `needs-retry` handler's False as "no retry", older ones as "retry now".
A DynamoDB stand-in on loopback counts the attempts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.endpoint import Endpoint
from botocore.hooks import first_non_none_response

from offer_state.deadlines import Deadline, InvocationDeadline, bound_by_invocation

ATTEMPT = 0.5  # what bound_by_invocation is told one attempt may take
THROTTLED = {
    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    "message": "slow down",
}


class _DynamoDB(ThreadingHTTPServer):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(("127.0.0.1", 0), _Answer)
        self.status, self.body, self.attempts = status, body, 0


class _Answer(BaseHTTPRequestHandler):
    server: _DynamoDB

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.attempts += 1
        payload = json.dumps(self.server.body).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_: Any) -> None:
        pass


def _older_needs_retry(
    self: Endpoint, attempts, operation_model, request_dict, response=None, caught_exception=None
) -> bool:
    # botocore up to 1.38 (Endpoint._needs_retry): any answer but None is a sleep, then a retry.
    service_id = operation_model.service_model.service_id.hyphenize()
    responses = self._event_emitter.emit(
        f"needs-retry.{service_id}.{operation_model.name}",
        response=response,
        endpoint=self,
        operation=operation_model,
        attempts=attempts,
        caught_exception=caught_exception,
        request_dict=request_dict,
    )
    handler_response = first_non_none_response(responses)
    if handler_response is None:
        return False
    time.sleep(handler_response)
    return True


@pytest.fixture(params=["this botocore", "older botocore"])
def botocore_reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.param == "older botocore":
        monkeypatch.setattr(Endpoint, "_needs_retry", _older_needs_retry)


def _serving(status: int, body: dict[str, Any]) -> Iterator[_DynamoDB]:
    server = _DynamoDB(status, body)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def throttling() -> Iterator[_DynamoDB]:
    yield from _serving(400, THROTTLED)


@pytest.fixture
def answering() -> Iterator[_DynamoDB]:
    yield from _serving(200, {"Item": {"pk": {"S": "x"}}})


def _client(server: _DynamoDB) -> Any:
    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 3}),
    )
    return bound_by_invocation(client, ATTEMPT)


def _little_time() -> InvocationDeadline:
    # Time for an attempt (and one more for the outcome), not for a throttled answer's backoff
    # (up to 1 s) and another attempt.
    return InvocationDeadline(Deadline.after(10.0), Deadline.after(2 * ATTEMPT + 0.3))


def test_a_throttled_call_with_no_time_to_retry_ends_with_its_error_after_one_attempt(
    botocore_reading: None, throttling: _DynamoDB
):
    client = _client(throttling)
    throttled = client.exceptions.ProvisionedThroughputExceededException
    with _little_time().current(), pytest.raises(throttled):
        client.get_item(TableName="t", Key={"pk": {"S": "x"}})
    assert throttling.attempts == 1


def test_a_throttled_call_with_time_is_retried_as_botocore_would(
    botocore_reading: None, throttling: _DynamoDB
):
    client = _client(throttling)
    throttled = client.exceptions.ProvisionedThroughputExceededException
    plenty = InvocationDeadline(Deadline.after(30.0), Deadline.after(30.0))
    with plenty.current(), pytest.raises(throttled):
        client.get_item(TableName="t", Key={"pk": {"S": "x"}})
    assert throttling.attempts == 3  # total_max_attempts


def test_an_answered_call_with_little_time_left_is_not_sent_again(
    botocore_reading: None, answering: _DynamoDB
):
    client = _client(answering)
    with _little_time().current():
        assert client.get_item(TableName="t", Key={"pk": {"S": "x"}})["Item"] == {"pk": {"S": "x"}}
    assert answering.attempts == 1
