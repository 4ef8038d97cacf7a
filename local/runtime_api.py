"""The Lambda Runtime API for one local function environment, which runs Lambda's own runtime
interface client (`python -m awslambdaric <module>.<handler>`, with `AWS_LAMBDA_RUNTIME_API`
pointing here), so the local stack runs the bootstrap Lambda's Python images run, and its
SnapStart hooks, rather than a model of them.

One server per environment: the Runtime API's paths name no environment, so the address is
what tells them apart. The runtime client is strict: it wants HTTP/1.1 and every invocation's
`Lambda-Runtime-Trace-Id` (without them it crashes, "Failed to get next"), hence the serving
base's HTTP/1.1 server and the headers below, as Lambda sends them:
https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html

- `GET /2018-06-01/runtime/invocation/next`: waits for the next invocation; its event is the
  body, with `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms` (epoch ms: now plus the
  function's Timeout), `-Invoked-Function-Arn` and `-Trace-Id`.
- `POST …/invocation/{id}/response` and `…/invocation/{id}/error`: the outcome.
- `POST …/init/error`: the handler module could not be loaded (the client then exits).
- SnapStart (`AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`): after init the client runs the
  before-snapshot hooks and calls `GET …/restore/next`, answered at the environment's first
  invocation (locally the "restore" is the same process going on); then it runs the
  after-restore hooks (`POST …/restore/error` if they fail) and asks for that invocation.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from local.serving import HttpRequest, HttpResponse, HttpService

RUNTIME = "/2018-06-01/runtime"
INVOCATION_OUTCOME = re.compile(RUNTIME + r"/invocation/([^/]+)/(response|error)")


@dataclass
class Invocation:
    request_id: str
    event: bytes
    timeout: float
    reply: dict[str, Any] | None = None
    done: threading.Event = field(default_factory=threading.Event)
    # Set when `next` hands it to the runtime client: `time.monotonic()` by which it must
    # answer, the same instant as its `Lambda-Runtime-Deadline-Ms`, so the context's remaining
    # time and the moment the environment is ended agree (a SnapStart restore comes before).
    deadline: float | None = None
    handed_out: threading.Event = field(default_factory=threading.Event)


class RuntimeApi(HttpService):
    """What one environment's runtime client talks to. `ready` is set once init is over (the
    client asks for its first invocation, or, with SnapStart, for its restore); `init_error`
    holds Lambda's error document when init or a hook failed."""

    max_body_bytes = 6 << 20  # Lambda's payload limit for a synchronous invocation

    def __init__(self, function_arn: str) -> None:
        super().__init__("127.0.0.1", 0)
        self.function_arn = function_arn
        self.ready = threading.Event()
        self.init_error: dict[str, Any] | None = None
        self._changed = threading.Condition()
        self._pending: Invocation | None = None
        self._current: Invocation | None = None
        self._closed = False

    @property
    def address(self) -> str:
        """`AWS_LAMBDA_RUNTIME_API`: host and port."""
        return f"127.0.0.1:{self.port}"

    def submit(self, invocation: Invocation) -> None:
        """Hands `invocation` to the runtime client; its `done` is set when it has answered."""
        with self._changed:
            self._pending = invocation
            self._changed.notify_all()

    def close(self) -> None:
        """Releases the requests waiting for an invocation or a restore with a 410, and answers
        any later one so (the environment is ending)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def respond(self, request: HttpRequest) -> HttpResponse:
        path, method = request.path, request.method
        if method == "GET" and path == RUNTIME + "/invocation/next":
            return self._next()
        if method == "GET" and path == RUNTIME + "/restore/next":
            self.ready.set()  # init and the before-snapshot hooks are over: the "snapshot"
            with self._changed:  # the first invocation is the restore
                self._changed.wait_for(lambda: self._pending is not None or self._closed)
                closed = self._closed
            # Closed: the environment is ending, never restored (its after-restore hooks must
            # not run while the stack stops).
            return HttpResponse(410 if closed else 200)
        if method == "POST" and path in (RUNTIME + "/init/error", RUNTIME + "/restore/error"):
            self.init_error = _error_document(request)
            return HttpResponse(202)
        outcome = INVOCATION_OUTCOME.fullmatch(path) if method == "POST" else None
        if outcome is not None:
            with self._changed:
                invocation = self._current
                if invocation is None or invocation.request_id != outcome[1]:
                    return HttpResponse(400)
                self._current = None
            if outcome[2] == "response":
                invocation.reply = {"result": _document(request.body)}
            else:
                invocation.reply = _error_document(request)
            invocation.done.set()
            return HttpResponse(202)
        return HttpResponse(404)

    def _next(self) -> HttpResponse:
        self.ready.set()
        with self._changed:
            self._changed.wait_for(lambda: self._pending is not None or self._closed)
            invocation, self._pending = (None if self._closed else self._pending), None
            self._current = invocation
            if invocation is not None:
                now = time.time()
                invocation.deadline = time.monotonic() + invocation.timeout
                invocation.handed_out.set()
        if invocation is None:  # closing: the environment is being ended
            return HttpResponse(410)
        deadline_ms = int((now + invocation.timeout) * 1000)
        trace_id = f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Sampled=0"
        return HttpResponse(
            200,
            invocation.event,
            [
                ("Content-Type", "application/json"),
                ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
                ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
                ("Lambda-Runtime-Invoked-Function-Arn", self.function_arn),
                ("Lambda-Runtime-Trace-Id", trace_id),
            ],
        )


def _error_document(request: HttpRequest) -> dict[str, Any]:
    """The runtime client's error document, whole (`errorType`, `errorMessage`,
    `stackTrace`, and whatever else it sent); one that is not an object with an `errorType`
    gets the `Lambda-Runtime-Function-Error-Type` header's, else `Runtime.Unknown`, and a body
    that is not an object becomes its `errorMessage`."""
    error = _document(request.body)
    fallback = request.headers.get("Lambda-Runtime-Function-Error-Type") or "Runtime.Unknown"
    if not isinstance(error, dict):
        text = error if isinstance(error, str) else json.dumps(error)
        return {"errorType": fallback, "errorMessage": text}
    if not isinstance(error.get("errorType"), str):
        return {**error, "errorType": fallback}
    return error


def _document(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace")
