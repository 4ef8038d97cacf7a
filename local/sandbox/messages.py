"""What a handler receives and returns, and the error bodies of both upstream APIs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from typing import Any

# AIR MILES `responseCode` per status; any other status is plain `ERROR`.
RESPONSE_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    404: "RECORD_NOT_FOUND",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}
# Auth0 `error` per status, for faults injected on the token endpoint.
AUTH0_ERRORS = {
    400: "invalid_request",
    401: "access_denied",
    403: "access_denied",
    429: "too_many_requests",
    503: "temporarily_unavailable",
}


@dataclass
class Request:
    """One parsed HTTP request."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes = b""
    # Filled by dispatch (`_counted`) for the Offer State endpoints: the verified token's claims.
    claims: dict[str, Any] | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> Any:
        """The body as JSON; raises ValueError when it is not."""
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Reply:
    """One answer, and how server.py puts it on the wire (`action`): `answer` sends it;
    `hold` and `reset` send nothing; `truncate` sends it whole up to half its body, then
    closes; `drip` sends it a byte every `interval` seconds."""

    status: int = 200
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    action: str = "answer"  # answer | hold | reset | truncate | drip
    interval: float = 0.0  # drip: seconds between two bytes

    @property
    def has_status_line(self) -> bool:
        """Whether the client is sent a status line (all of it, or byte by byte)."""
        return self.action not in ("hold", "reset")


class ApiError(Exception):
    """An AIR MILES-style error answer, raised from deep inside a handler."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or RESPONSE_CODES.get(status, "ERROR")


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps(payload).encode("utf-8")
    return Reply(status, body, {"Content-Type": "application/json", **(headers or {})})


def api_error(status: int, message: str, code: str | None = None) -> Reply:
    """`{"responseCode": …, "message": …}`, the AIR MILES error shape."""
    code = code or RESPONSE_CODES.get(status, "ERROR")
    return json_reply(status, {"responseCode": code, "message": message})


def auth0_error(status: int, error: str, description: str) -> Reply:
    """`{"error": …, "error_description": …}`, the Auth0 error shape."""
    return json_reply(status, {"error": error, "error_description": description})


def status_sentence(status: int) -> str:
    try:
        return f"{HTTPStatus(status).phrase}."
    except ValueError:
        return f"HTTP status {status}."
