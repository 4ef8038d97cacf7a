"""The control API under `/_sandbox/`: inspect state, mint member tokens, configure, inject
faults. Never part of the AIR MILES surface; JSON in and out, no auth. A bad input raises
ValueError, which the server answers as `400 {"error": "<sentence>"}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from local.sandbox.messages import Reply, Request, json_reply
from local.sandbox.validation import is_collector_number

if TYPE_CHECKING:
    from local.sandbox.server import Sandbox


def _body(request: Request) -> Any:
    if not request.body.strip():
        return {}
    try:
        return request.json()
    except ValueError:
        raise ValueError("The body is not valid JSON.") from None


def offers(sandbox: Sandbox, request: Request) -> Reply:
    return json_reply(200, {"offerIds": sandbox.store.offer_ids()})


def collector_states(sandbox: Sandbox, request: Request, collector: str) -> Reply:
    """The raw store for one collector, UNSAVED-only offers included, in catalogue order."""
    if not is_collector_number(collector):
        raise ValueError("The collector number must be exactly 11 digits.")
    entries = sandbox.store.entries(collector, include_hidden=True)
    return json_reply(
        200, {"collectorNumber": collector, "offers": [entry.to_json() for entry in entries]}
    )


def member_token(sandbox: Sandbox, request: Request) -> Reply:
    body = _body(request)
    number = body.get("collectorNumber") if isinstance(body, dict) else None
    if not is_collector_number(number):
        raise ValueError("collectorNumber must be a string of exactly 11 digits.")
    token = sandbox.tokens.issue_member(number, sandbox.config["tokenTtl"])
    return json_reply(200, {"access_token": token})


def get_config(sandbox: Sandbox, request: Request) -> Reply:
    return json_reply(200, sandbox.config.snapshot())


def set_config(sandbox: Sandbox, request: Request) -> Reply:
    return json_reply(200, sandbox.config.update(_body(request)))


def reset(sandbox: Sandbox, request: Request) -> Reply:
    sandbox.reset()
    return json_reply(200, {"status": "reset"})


def calls(sandbox: Sandbox, request: Request) -> Reply:
    return json_reply(200, sandbox.calls.counts())


def requests(sandbox: Sandbox, request: Request) -> Reply:
    return json_reply(200, {"requests": sandbox.calls.requests()})


def list_faults(sandbox: Sandbox, request: Request) -> Reply:
    return json_reply(200, {"faults": sandbox.faults.list()})


def add_fault(sandbox: Sandbox, request: Request) -> Reply:
    return json_reply(200, {"fault": sandbox.faults.add(_body(request))})


def clear_faults(sandbox: Sandbox, request: Request) -> Reply:
    sandbox.faults.clear()
    return json_reply(200, {"status": "cleared"})
