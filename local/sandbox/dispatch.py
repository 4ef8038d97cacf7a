"""The sandbox's behaviour for one request: routing, the counted-call pipeline, which fault
applies. No HTTP plumbing here: a `Request` in, a `Reply` out (server.py puts it on the wire).

A counted call (token, health, find, get, count, put) is counted and logged first, then any
fault applies, and only then the endpoint itself runs (its auth, validation and work), if at
all: `status` and `malformed` answer in its place; `timeout` and `reset` send no answer and run
it first only when `applied`; `delay` runs it after the wait, or before the wait when `applied`;
`truncate`, `drip` and `badGzip` run it and misbehave with its own answer (a PUT's change is
stored under them only when `applied`, and always under `badGzip`).
"""

from __future__ import annotations

import functools
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import Any

from local.sandbox import control_api, offer_api
from local.sandbox.messages import (
    AUTH0_ERRORS,
    ApiError,
    Reply,
    Request,
    api_error,
    auth0_error,
    json_reply,
    status_sentence,
)
from local.sandbox.state import SandboxState
from local.sandbox.token_endpoint import issue_token
from local.sandbox.tokens import TOKEN_PATH, token_kind

logger = logging.getLogger(__name__)

Handler = Callable[..., Reply]
JWKS_PATH = "/.well-known/jwks.json"
COLLECTOR_STATES = re.compile(r"/_sandbox/collectors/([^/]*)/states")
# Bodies that start like the real answer and stop mid-way: what a cut-off proxy would pass on.
MALFORMED_BODIES = {"token": b'{"access_token": "eyJ', "*": b'{"offers": [{"offerId": '}


def _jwks(state: SandboxState, request: Request) -> Reply:
    return json_reply(200, state.tokens.jwks())


@dataclass(frozen=True)
class Route:
    """A path's handlers by method; `endpoint` names the counter of a counted route."""

    methods: dict[str, Handler]
    endpoint: str | None = None


ROUTES = {
    TOKEN_PATH: Route({"POST": issue_token}, "token"),
    "/offers/state-reader/health": Route({"GET": offer_api.health}, "health"),
    "/offers/state-reader/v1/find": Route({"GET": offer_api.find_states}, "find"),
    "/offers/state-reader/v1/get": Route({"GET": offer_api.get_states}, "get"),
    "/offers/state-reader/v1/count": Route({"GET": offer_api.count_states}, "count"),
    "/offers/state-writer/v1/put": Route({"PUT": offer_api.put_states}, "put"),
    # The upstream page's heading names this path for PUT; its sample uses state-writer.
    "/offers/state-reader/v1/put": Route({"PUT": offer_api.put_states}, "put"),
    JWKS_PATH: Route({"GET": _jwks}),
    "/_sandbox/offers": Route({"GET": control_api.offers}),
    "/_sandbox/member-token": Route({"POST": control_api.member_token}),
    "/_sandbox/config": Route({"GET": control_api.get_config, "POST": control_api.set_config}),
    "/_sandbox/reset": Route({"POST": control_api.reset}),
    "/_sandbox/tokens/revoke": Route({"POST": control_api.revoke_tokens}),
    "/_sandbox/calls": Route({"GET": control_api.calls}),
    "/_sandbox/requests": Route({"GET": control_api.requests}),
    "/_sandbox/faults": Route(
        {
            "GET": control_api.list_faults,
            "POST": control_api.add_fault,
            "DELETE": control_api.clear_faults,
        }
    ),
}
# Auth0 and the JWKS document do not speak AIR MILES: no correlation id on their answers.
NO_CORRELATION = {TOKEN_PATH, JWKS_PATH}


def dispatch(state: SandboxState, request: Request) -> Reply:
    """The answer to one request (or an instruction to hold or reset the connection)."""
    route = _route(request.path)
    handler = route.methods.get(request.method) if route else None
    if route is None:
        reply = api_error(404, "No such resource.", "NOT_FOUND")
    elif handler is None:
        reply = api_error(405, "Method not allowed on this resource.")
        reply.headers["Allow"] = ", ".join(route.methods)
    elif route.endpoint is not None:
        reply = _counted(state, route.endpoint, handler, request)
    else:
        reply = _control(state, handler, request)
    if request.path not in NO_CORRELATION:
        correlation_id = request.header("x-correlation-id") or str(uuid.uuid4())
        reply.headers["X-Correlation-Id"] = correlation_id
    return reply


def _route(path: str) -> Route | None:
    match = COLLECTOR_STATES.fullmatch(path)
    if match is None:
        return ROUTES.get(path)
    return Route({"GET": functools.partial(control_api.collector_states, collector=match[1])})


def _control(state: SandboxState, handler: Handler, request: Request) -> Reply:
    try:
        return handler(state, request)
    except ValueError as error:
        return json_reply(400, {"error": str(error)})


def _counted(state: SandboxState, endpoint: str, handler: Handler, request: Request) -> Reply:
    if endpoint != "token":
        token = _bearer(request)
        request.claims = state.tokens.verify(token) if token else None
    entry = {
        "endpoint": endpoint,
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": _recorded_headers(request.headers),
        "status": None,
        "tokenKind": token_kind(request.claims),
    }
    if endpoint == "put":
        entry["body"] = _recorded_body(request)
    state.calls.record(entry)
    reply = _faulted(state, endpoint, handler, request, state.faults.take(endpoint))
    state.calls.set_status(entry, reply.status if reply.has_status_line else None)
    return reply


def _faulted(
    state: SandboxState,
    endpoint: str,
    handler: Handler,
    request: Request,
    fault: dict[str, Any] | None,
) -> Reply:
    """The call's reply under `fault` (None: no fault), the endpoint run as the module's
    docstring says."""
    if fault is None:
        return _handled(state, handler, request)
    mode = fault["mode"]
    if mode == "status":
        return _fault_status_reply(endpoint, fault)
    if mode == "malformed":
        body = MALFORMED_BODIES.get(endpoint, MALFORMED_BODIES["*"])
        return Reply(200, body, {"Content-Type": "application/json"})
    applied = fault.get("applied", False)
    if mode == "delay":
        seconds = fault["delayMs"] / 1000
        if not applied:
            state.stopping.wait(seconds)
            return _handled(state, handler, request)
        reply = _handled(state, handler, request)
        state.stopping.wait(seconds)
        return reply
    if mode in ("timeout", "reset"):
        if applied:
            _handled(state, handler, request)  # the change is stored, its answer never sent
        return Reply(action="hold" if mode == "timeout" else "reset")
    # truncate, drip, badGzip: the endpoint's own answer, misbehaving.
    if endpoint == "put" and mode != "badGzip" and not applied:
        handler = functools.partial(handler, apply=False)
    reply = _handled(state, handler, request)
    if endpoint == "put" and reply.status in (200, 204):
        # 204 has no body to cut, pace or mislabel: a 200 with the changes echoed has.
        reply = json_reply(200, {"stateChanges": request.json()["stateChanges"]})
    if mode == "badGzip":
        reply.headers["Content-Encoding"] = "gzip"  # the body stays plain JSON
    else:
        reply.action = mode
        reply.interval = fault.get("intervalMs", 0) / 1000
    return reply


def _handled(state: SandboxState, handler: Handler, request: Request) -> Reply:
    """The endpoint's own answer; an unexpected failure is a 500, never a dropped call."""
    try:
        return handler(state, request)
    except ApiError as error:
        return api_error(error.status, error.message, error.code)
    except Exception:
        logger.exception("sandbox handler failed")
        return api_error(500, "The sandbox failed to handle the request.")


def _fault_status_reply(endpoint: str, fault: dict[str, Any]) -> Reply:
    status = fault["status"]
    if endpoint == "token":
        error = AUTH0_ERRORS.get(status, "server_error" if status >= 500 else "invalid_request")
        reply = auth0_error(status, error, status_sentence(status))
    else:
        reply = api_error(status, status_sentence(status))
    if status in (429, 503):
        reply.headers["Retry-After"] = str(fault["retryAfter"])
    return reply


def _bearer(request: Request) -> str | None:
    scheme, _, token = (request.header("Authorization") or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _recorded_headers(headers: Message) -> dict[str, str]:
    recorded: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key == "authorization":
            value = "Bearer <redacted>" if value.lower().startswith("bearer") else "<redacted>"
        recorded[key] = f"{recorded[key]}, {value}" if key in recorded else value
    return recorded


def _recorded_body(request: Request) -> Any:
    try:
        return request.json()
    except ValueError:
        return request.body.decode("utf-8", errors="replace")[:2000]
