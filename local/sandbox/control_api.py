"""The control API under `/_sandbox/`: inspect state, mint member tokens, configure, inject
faults. Never part of the AIR MILES surface; JSON in and out, no auth. A bad input raises
ValueError, which `dispatch` answers as `400 {"error": "<sentence>"}`.
"""

from __future__ import annotations

from typing import Any

from local.sandbox.messages import Reply, Request, json_reply
from local.sandbox.state import SandboxState
from local.sandbox.validation import is_collector_number


def _body(request: Request) -> Any:
    if not request.body.strip():
        return {}
    try:
        return request.json()
    except ValueError:
        raise ValueError("The body is not valid JSON.") from None


def offers(state: SandboxState, request: Request) -> Reply:
    return json_reply(200, {"offerIds": state.store.offer_ids()})


def collector_states(state: SandboxState, request: Request, collector: str) -> Reply:
    """The raw store for one collector, UNSAVED-only offers included, in catalogue order."""
    if not is_collector_number(collector):
        raise ValueError("The collector number must be exactly 11 digits.")
    entries = state.store.entries(collector, include_hidden=True)
    return json_reply(
        200, {"collectorNumber": collector, "offers": [entry.to_json() for entry in entries]}
    )


def member_token(state: SandboxState, request: Request) -> Reply:
    body = _body(request)
    number = body.get("collectorNumber") if isinstance(body, dict) else None
    if not is_collector_number(number):
        raise ValueError("collectorNumber must be a string of exactly 11 digits.")
    token = state.tokens.issue_member(number, state.config["tokenTtl"])
    return json_reply(200, {"access_token": token})


def get_config(state: SandboxState, request: Request) -> Reply:
    return json_reply(200, state.config.snapshot())


def set_config(state: SandboxState, request: Request) -> Reply:
    return json_reply(200, state.config.update(_body(request)))


def reset(state: SandboxState, request: Request) -> Reply:
    state.reset()
    return json_reply(200, {"status": "reset"})


def calls(state: SandboxState, request: Request) -> Reply:
    return json_reply(200, state.calls.counts())


def requests(state: SandboxState, request: Request) -> Reply:
    return json_reply(200, {"requests": state.calls.requests()})


def list_faults(state: SandboxState, request: Request) -> Reply:
    return json_reply(200, {"faults": state.faults.list()})


def add_fault(state: SandboxState, request: Request) -> Reply:
    return json_reply(200, {"fault": state.faults.add(_body(request))})


def clear_faults(state: SandboxState, request: Request) -> Reply:
    state.faults.clear()
    return json_reply(200, {"status": "cleared"})


def revoke_tokens(state: SandboxState, request: Request) -> Reply:
    """Every token issued before answers 401 from now on, as after a signing-key rotation."""
    state.tokens.rotate_key()
    return json_reply(200, {"status": "revoked"})
