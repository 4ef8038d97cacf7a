"""The local Lambda Runtime API (`local.runtime_api`), driven over loopback as the runtime
client drives it: what it does with the error documents the client posts, and when it is
closed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from local.runtime_api import RUNTIME, Invocation, RuntimeApi
from tests.support.waiting import wait_until


@pytest.fixture
def api() -> Iterator[RuntimeApi]:
    with RuntimeApi("arn:aws:lambda:us-east-1:123456789012:function:f") as server:
        yield server


def _failed(api: RuntimeApi, body: bytes, headers: dict[str, str] | None = None) -> object:
    """The reply of an invocation whose runtime client posted `body` to its error path."""
    invocation = Invocation("req-1", b"{}", 3.0)
    api.submit(invocation)
    url = f"http://{api.address}{RUNTIME}"
    taken = requests.get(f"{url}/invocation/next", timeout=5)
    assert taken.headers["Lambda-Runtime-Aws-Request-Id"] == "req-1"
    posted = requests.post(
        f"{url}/invocation/req-1/error", data=body, headers=headers or {}, timeout=5
    )
    assert posted.status_code == 202
    assert invocation.done.wait(5)
    return invocation.reply


def test_the_clients_error_document_is_passed_on_whole(api: RuntimeApi):
    error = {
        "errorType": "ValueError",
        "errorMessage": "bad",
        "stackTrace": ["  File x"],
        "requestId": "req-1",
        "extra": {"a": 1},
    }
    assert _failed(api, json.dumps(error).encode()) == error


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"not json", "not json"), (b"[1, 2]", "[1, 2]"), (b'"text"', "text")],
)
def test_an_error_body_that_is_not_an_object_is_runtime_unknown(api, body, message):
    assert _failed(api, body) == {"errorType": "Runtime.Unknown", "errorMessage": message}


def test_an_error_object_without_a_type_takes_the_headers_or_runtime_unknown(api):
    assert _failed(api, b'{"errorMessage": "m"}') == {
        "errorMessage": "m",
        "errorType": "Runtime.Unknown",
    }
    header = {"Lambda-Runtime-Function-Error-Type": "Custom.Kind"}
    assert _failed(api, b"oops", header) == {"errorType": "Custom.Kind", "errorMessage": "oops"}


@pytest.mark.parametrize("path", ["/restore/next", "/invocation/next"])
def test_closing_answers_the_waiting_and_later_requests_410(api: RuntimeApi, path: str):
    """An environment ending while idle is never handed a restore or an invocation: with
    SnapStart, its after-restore hooks do not run while the stack stops."""
    url = f"http://{api.address}{RUNTIME}{path}"
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(requests.get, url, timeout=5)
        assert wait_until(api.ready.is_set, 5)
        api.close()
        assert waiting.result().status_code == 410
    api.submit(Invocation("req-1", b"{}", 3.0))  # too late: the environment is ending
    assert requests.get(url, timeout=5).status_code == 410
