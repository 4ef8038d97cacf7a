"""`POST /oauth/token`: Auth0's client credentials grant, its checks in Auth0's order."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from urllib.parse import parse_qs, unquote

from local.sandbox.messages import Reply, Request, auth0_error, json_reply
from local.sandbox.state import SandboxState
from local.sandbox.tokens import AUDIENCE, CLIENT_ID, CLIENT_SECRET

# Auth0 answers tokens (and their errors) with these; a client must not cache them.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _parameters(request: Request) -> dict[str, str]:
    """Form fields, or a JSON object's string fields (Auth0 accepts both)."""
    text = request.body.decode("utf-8", errors="replace")
    if "json" in (request.header("Content-Type") or "").lower():
        return _json_fields(text)
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


def _json_fields(text: str) -> dict[str, str]:
    """A JSON body's string fields (an empty body has none); ValueError if it is not an object."""
    payload = json.loads(text) if text.strip() else {}
    if not isinstance(payload, dict):
        raise ValueError("body is not a JSON object")
    return {k: v for k, v in payload.items() if isinstance(v, str)}


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    # client_secret_basic, which Auth0 also accepts.
    scheme, _, value = (request.header("Authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (unquote(user), unquote(password)) if sep else None


def _error(status: int, error: str, description: str) -> Reply:
    reply = auth0_error(status, error, description)
    reply.headers.update(NO_STORE)
    return reply


def _grant_refusal(params: dict[str, str]) -> Reply | None:
    grant_type = params.get("grant_type")
    if not grant_type:
        return _error(400, "invalid_request", "Missing required parameter: grant_type")
    if grant_type != "client_credentials":
        return _error(
            403, "unauthorized_client", f"Grant type '{grant_type}' not allowed for the client."
        )
    return None


def _client_credentials(params: dict[str, str], request: Request) -> tuple[str | None, str | None]:
    """The form's client_id and client_secret; the Authorization header's when the form names
    no client."""
    basic = _basic_credentials(request)
    if basic and not params.get("client_id"):
        return basic
    return params.get("client_id"), params.get("client_secret")


def _client_refusal(params: dict[str, str], request: Request) -> Reply | None:
    client_id, client_secret = _client_credentials(params, request)
    if client_id != CLIENT_ID:
        return _error(401, "access_denied", "Unauthorized")
    if not hmac.compare_digest((client_secret or "").encode(), CLIENT_SECRET.encode()):
        return _error(401, "invalid_client", "Client authentication failed")
    return None


def _audience_refusal(params: dict[str, str]) -> Reply | None:
    audience = params.get("audience")
    if audience != AUDIENCE:
        return _error(403, "access_denied", f"Service not enabled within domain: {audience or ''}")
    return None


def issue_token(state: SandboxState, request: Request) -> Reply:
    """The M2M token for the sandbox client, or the Auth0 error a real tenant would give: the
    body, then the grant type, the client and the audience, in that order."""
    try:
        params = _parameters(request)
    except ValueError:
        return _error(400, "invalid_request", "The request body is not valid.")
    refusal = (
        _grant_refusal(params) or _client_refusal(params, request) or _audience_refusal(params)
    )
    if refusal is not None:
        return refusal
    ttl = state.config["tokenTtl"]
    token = state.tokens.issue_m2m(CLIENT_ID, ttl)
    return json_reply(
        200, {"access_token": token, "token_type": "Bearer", "expires_in": ttl}, NO_STORE
    )
