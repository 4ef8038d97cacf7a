"""A local Lambda Invoke API on 127.0.0.1: `POST /2015-03-31/functions/{name}/invocations`, as
boto3's Lambda client sends it. The local stack points the functions' Lambda client at it with
`AWS_ENDPOINT_URL_LAMBDA`, so the template's environment stays as deployed.

`X-Amz-Invocation-Type: Event` is answered 202 at once and the invocation runs on a thread of
its own, as Lambda queues an asynchronous invocation; `RequestResponse` (the default) is
answered 200 with the handler's result, with `X-Amz-Function-Error: Unhandled` and the error
when it raised. A function it does not serve is Lambda's 404 `ResourceNotFoundException`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from local.serving import HttpRequest, HttpResponse, HttpService, json_response

# An event in, the handler's reply out: {"result": …} or {"errorType", "errorMessage", …}.
Invoker = Callable[[dict[str, Any]], dict[str, Any]]
INVOCATIONS = re.compile(r"/2015-03-31/functions/([^/]+)/invocations")


class LambdaApi(HttpService):
    """Serves `functions` (function name: invoker); `wait()` waits for the asynchronous
    invocations under way."""

    def __init__(self, functions: Mapping[str, Invoker], port: int = 0) -> None:
        super().__init__("127.0.0.1", port)
        self.functions = dict(functions)
        self._running: list[threading.Thread] = []

    def respond(self, request: HttpRequest) -> HttpResponse:
        match = INVOCATIONS.fullmatch(request.path)
        # A function's ARN or name, with or without a qualifier: the name is what is served.
        name = unquote(match[1]).split(":function:")[-1].split(":")[0] if match else ""
        invoke = self.functions.get(name) if request.method == "POST" else None
        if invoke is None:
            return json_response(
                404,
                {"Type": "User", "message": f"Function not found: {name or request.path}"},
                [("x-amzn-ErrorType", "ResourceNotFoundException")],
            )
        event = json.loads(request.body or b"{}")
        if request.headers.get("X-Amz-Invocation-Type") == "Event":
            thread = threading.Thread(target=invoke, args=(event,), daemon=True)
            self._running = [t for t in self._running if t.is_alive()] + [thread]
            thread.start()
            return HttpResponse(202)
        reply = invoke(event)
        if "errorType" in reply:
            error = {k: reply[k] for k in ("errorType", "errorMessage")}
            return json_response(200, error, [("X-Amz-Function-Error", "Unhandled")])
        return json_response(200, reply["result"])

    def wait(self, timeout: float = 60.0) -> None:
        for thread in list(self._running):
            thread.join(timeout)

    def stop(self) -> None:
        super().stop()
        self.wait()


def schedule_seconds(expression: str) -> float:
    """`rate(5 minutes)` (an EventBridge rate expression) in seconds."""
    match = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", expression.strip())
    if match is None:
        raise ValueError(f"not a rate expression the local stack runs: {expression!r}")
    return int(match[1]) * {"minute": 60, "hour": 3600, "day": 86400}[match[2]]


def run_on_schedule(
    invoke: Invoker, event: dict[str, Any], seconds: float, stop: threading.Event
) -> threading.Thread:
    """Invokes `invoke(event)` every `seconds` from now until `stop` is set, as an EventBridge
    schedule does (without waiting for a run that is late: runs may overlap)."""

    def loop() -> None:
        while not stop.wait(seconds):
            threading.Thread(target=invoke, args=(event,), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True, name="schedule")
    thread.start()
    return thread
