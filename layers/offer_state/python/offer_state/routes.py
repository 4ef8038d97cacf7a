"""The partner API's route table: which routes touch a collector, what each is audited as
and the scope it needs, the errors each documents, and the request headers they declare.

template.yaml declares the same routes and scopes for API Gateway; the function modules
declare the routes on the Event Handler with `route_docs` and these header types.
"""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple
from uuid import UUID

from offer_state.audit import Action
from offer_state.event_handler import Header
from offer_state.identity import READ_SCOPE, WRITE_SCOPE
from offer_state.models.airmiles_requests import LocalTime
from offer_state.models.partner import ErrorAnswer, GatewayMessage


class CollectorRoute(NamedTuple):
    """A route that touches a collector: what it is audited as, and the scope it needs."""

    action: Action
    scope: str


# (API Gateway checks the scopes too; template.yaml declares the same ones.)
COLLECTOR_ROUTES: dict[str, CollectorRoute] = {
    "GET /v1/offers/states": CollectorRoute(Action.GET_STATES, READ_SCOPE),
    "GET /v1/offers/states/find": CollectorRoute(Action.FIND_STATES, READ_SCOPE),
    "GET /v1/offers/states/count": CollectorRoute(Action.COUNT_STATES, READ_SCOPE),
    "PUT /v1/offers/{offerId}/states": CollectorRoute(Action.UPDATE_STATES, WRITE_SCOPE),
    "PUT /v1/offers/states": CollectorRoute(Action.UPDATE_STATES, WRITE_SCOPE),
}
# The OpenAPI security scheme every protected route names (with the scope it needs).
SECURITY_SCHEME = "partnerJwt"
_ERRORS = {
    400: "Invalid request (VALIDATION_ERROR), or a member token with Collector-Number"
    " (COLLECTOR_AMBIGUOUS)",
    401: "No or invalid token (answered by API Gateway)",
    403: "The token lacks the route's scope or names no collector (FORBIDDEN)",
    404: "AIR MILES does not know the offer (OFFER_NOT_FOUND)",
    409: "Idempotency-Key reused with another body, or the first request still in flight"
    " (IDEMPOTENCY_CONFLICT)",
    413: "Body over 64 KiB (PAYLOAD_TOO_LARGE)",
    415: "Body not application/json (UNSUPPORTED_MEDIA_TYPE)",
    429: "AIR MILES is throttling (RATE_LIMITED), with Retry-After when known",
    502: "AIR MILES failed or answered something unusable (UPSTREAM_ERROR)",
    503: "Secrets Manager or DynamoDB unavailable (DEPENDENCY_UNAVAILABLE)",
    504: "AIR MILES did not answer in time (UPSTREAM_TIMEOUT)",
}
# A change's answer lost (OUTCOME_UNKNOWN): what the writes' 502 and 504 add.
_UNKNOWN = (
    "; or the change was sent and its answer lost (OUTCOME_UNKNOWN): it may or may not have "
    "been applied. Read the states again and, if the change is not there, send it again with a "
    "new Idempotency-Key; a repeat with the same key gets this answer again "
    "(Idempotent-Replayed: true) and sends nothing"
)
_WRITE_DESCRIPTIONS = {502: _ERRORS[502] + _UNKNOWN, 504: _ERRORS[504] + _UNKNOWN}
_READ_ERRORS = (400, 401, 403, 404, 429, 502, 503, 504)
_WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 415, 429, 502, 503, 504)


_SUCCESS = {
    "description": "Success. Every answer carries X-Correlation-Id; a PUT replayed from its "
    "Idempotency-Key also Idempotent-Replayed: true.",
    "headers": {
        "X-Correlation-Id": {"schema": {"type": "string", "format": "uuid"}},
        "Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]}},
    },
}


def route_docs(route_key: str) -> dict[str, Any]:
    """A route decorator's OpenAPI arguments: the scope it needs and what it answers (the
    success body comes from the route's return annotation)."""
    if route_key not in COLLECTOR_ROUTES:  # /health: no token
        return {"security": [], "responses": {200: _SUCCESS, **_error_responses(502, 503, 504)}}
    scope = COLLECTOR_ROUTES[route_key].scope
    statuses = _READ_ERRORS if scope == READ_SCOPE else _WRITE_ERRORS
    descriptions = _WRITE_DESCRIPTIONS if scope == WRITE_SCOPE else {}
    responses = {200: _SUCCESS, **_error_responses(*statuses, descriptions=descriptions)}
    return {"security": [{SECURITY_SCHEME: [scope]}], "responses": responses}


def _error_responses(*statuses: int, descriptions: dict[int, str] | None = None) -> dict[int, Any]:
    return {
        status: {
            "description": (descriptions or {}).get(status, _ERRORS[status]),
            "content": {
                "application/json": {"model": GatewayMessage if status == 401 else ErrorAnswer}
            },
        }
        for status in statuses
    }


# The optional request headers the routes declare (and the OpenAPI document shows).
CollectorNumberHeader = Annotated[
    str | None,
    Header(alias="collector-number", description="Machine tokens only: the collector (11 digits)"),
]
LocalTimeHeader = Annotated[
    LocalTime | None,
    Header(alias="x-local-time", description="The caller's wall-clock time, YYYY-MM-DDTHH:MM:SS"),
]
IdempotencyKeyHeader = Annotated[
    UUID | None,
    Header(alias="idempotency-key", description="Repeat-safe key: same key and body, same answer"),
]
