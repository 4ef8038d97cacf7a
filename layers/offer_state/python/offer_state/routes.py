"""The partner API's route table: which routes touch a collector, what each is audited as
and the scope it needs; and each route's OpenAPI operation (the name a generated client calls
it by, its tag, what it says, the errors it documents, examples of its request and answers),
with the request headers and parameters the routes declare.

template.yaml declares the same routes and scopes for API Gateway; the function modules
declare the routes on the Event Handler with `route_docs` and these parameter types, and
`make openapi` (local/openapi.py) writes openapi.json from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, NamedTuple
from uuid import UUID

from pydantic import BaseModel, WithJsonSchema

from offer_state import upstream
from offer_state.audit import Action
from offer_state.errors import (
    CollectorAmbiguousError,
    DependencyUnavailableError,
    ForbiddenError,
    IdempotencyConflictError,
    OfferNotFoundError,
    OfferStateError,
    PayloadTooLargeError,
    RateLimitedError,
    UnsupportedMediaTypeError,
    UpstreamError,
    UpstreamTimeoutError,
    ValidationError,
    unknown_outcome,
)
from offer_state.event_handler import Body, Header, Path, Query
from offer_state.identity import READ_SCOPE, WRITE_SCOPE
from offer_state.models.airmiles_requests import LocalTime, OfferIdList, StateChanges
from offer_state.models.partner import (
    AppliedChanges,
    CountAnswer,
    ErrorAnswer,
    FindAnswer,
    GatewayMessage,
    HealthAnswer,
    OfferStatesAnswer,
    StatesBody,
)


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

# ---------------------------------------------------------------- the operations

HEALTH_TAG = "Health"
STATES_TAG = "Offer states"
# The document's tags (local/openapi.py lists them), each with what it groups.
TAGS = {
    HEALTH_TAG: "Whether the gateway and AIR MILES are up. No token.",
    STATES_TAG: "Read and change the collector's offer states (saved, opted in).",
}

# The offers and the correlation id the examples use (offers of the local sandbox's seed).
_OFFER = "27686e93-63c8-57dc-9990-5e19c3ccf4e9"
_SAVED_OFFER = "b633bceb-85a1-5355-963c-e1f70c13efa6"
_CORRELATION_ID = "0ac22720-3ab1-435f-982d-f2a2bdb5331c"
_NOW = "2026-11-26T00:31:01.149341Z"


def _example(summary: str, value: object) -> dict[str, object]:
    return {"summary": summary, "value": value}


class Operation(NamedTuple):
    """A route's OpenAPI operation."""

    operation_id: str  # camelCase, stable: a generated client's function name
    tag: str
    summary: str
    description: str
    model: type[BaseModel]  # its 200 answer's (the route's return annotation names it too)
    answer: Mapping[str, object]  # an example of its 200 answer
    errors: tuple[int, ...]  # the error statuses it documents
    # Examples of its request: the body's (a PUT), or its query parameters' (by name).
    body: Mapping[str, object] | None = None
    parameters: Mapping[str, object] = {}


_READ_ERRORS = (400, 401, 403, 404, 429, 502, 503, 504)
_WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 415, 429, 502, 503, 504)
_STATES_ANSWER = {
    "offers": [
        {
            "offerId": _SAVED_OFFER,
            "optedIn": True,
            "saved": True,
            "states": [
                {"name": "OPT_IN", "value": "OPTED_IN", "updatedAt": "2026-01-05T10:15:30.123456Z"},
                {"name": "SAVE", "value": "SAVED", "updatedAt": "2026-01-06T08:00:00.000001Z"},
            ],
        },
        {"offerId": _OFFER, "optedIn": False, "saved": False, "states": []},
    ]
}
_APPLIED = {
    "stateChanges": [
        {"offerId": _OFFER, "states": [{"name": "OPT_IN", "value": "OPTED_IN", "updatedAt": _NOW}]}
    ]
}
_CHANGE_DESCRIPTION = (
    " The whole request is one change at AIR MILES; the answer lists the changes as applied, "
    "`updatedAt` being when the gateway saw AIR MILES accept them. Send an `Idempotency-Key` "
    "(a new UUID per intended change) and repeat a request with the same key: within 24 h it "
    "is answered with the first answer again (`Idempotent-Replayed: true`) and not sent to "
    "AIR MILES again. A success and an `OUTCOME_UNKNOWN` keep their key; any other error "
    "frees it."
)
OPERATIONS: dict[str, Operation] = {
    "GET /health": Operation(
        "getHealth",
        HEALTH_TAG,
        "Gateway and AIR MILES health (no token needed)",
        "`status` is `ok` when AIR MILES reports itself healthy, `degraded` when it answers "
        "but says it is not. Cached for 30 s per function environment. Anonymous callers "
        "share a tight limit (5 requests per second, bursts of 10).",
        HealthAnswer,
        {
            "status": "ok",
            "upstream": {"healthy": True, "timestamp": "2026-11-26T00:31:01.088Z"},
            "checkedAt": "2026-11-26T00:31:01.089428Z",
        },
        (502, 503, 504),
    ),
    "GET /v1/offers/states": Operation(
        "getStates",
        STATES_TAG,
        "States of a page of offers, in the order asked",
        "The states of 1 to 100 offers (`offerId` repeated, or comma-separated; duplicates "
        "are folded), every one of them in the order asked, so that one call labels a page "
        "of offers. An offer without a state comes back with `optedIn: false, saved: false, "
        "states: []`.",
        OfferStatesAnswer,
        _STATES_ANSWER,
        _READ_ERRORS,
        parameters={"offerId": [_SAVED_OFFER, _OFFER]},
    ),
    "GET /v1/offers/states/find": Operation(
        "findStates",
        STATES_TAG,
        "The collector's saved and opted-in offers, paged",
        'The collector\'s saved and opted-in offers ("My saved offers"), a page at a time, '
        "filtered by state, partner and region, sorted by up to two keys. Pages start at 0.",
        FindAnswer,
        {
            "offers": [
                {
                    "offerId": "13778dd8-5089-5881-8db1-a69047b4fe86",
                    "optedIn": False,
                    "saved": True,
                    "states": [
                        {
                            "name": "SAVE",
                            "value": "SAVED",
                            "updatedAt": "2026-01-07T12:30:45.654321Z",
                        }
                    ],
                }
            ],
            "pageNumber": 0,
            "pageSize": 2,
            "totalCount": 3,
        },
        _READ_ERRORS,
        parameters={"state": ["SAVE:SAVED"], "pageSize": 2},
    ),
    "GET /v1/offers/states/count": Operation(
        "countStates",
        STATES_TAG,
        "How many offers the collector saved or opted into",
        "How many offers the collector has saved or opted into, with the filters of "
        "`findStates` (sort and paging parameters are refused).",
        CountAnswer,
        {"count": 3},
        _READ_ERRORS,
        parameters={"state": ["OPT_IN:OPTED_IN"]},
    ),
    "PUT /v1/offers/{offerId}/states": Operation(
        "updateOfferStates",
        STATES_TAG,
        "Change one offer's states",
        "Sets 1 or 2 states of one offer: `SAVE` to `SAVED` or `UNSAVED`, `OPT_IN` to "
        "`OPTED_IN`." + _CHANGE_DESCRIPTION,
        AppliedChanges,
        _APPLIED,
        _WRITE_ERRORS,
        body={"states": [{"name": "OPT_IN", "value": "OPTED_IN"}]},
    ),
    "PUT /v1/offers/states": Operation(
        "updateStates",
        STATES_TAG,
        "Change the states of 1 to 25 offers at once",
        "Sets the states of 1 to 25 offers, each named once." + _CHANGE_DESCRIPTION,
        AppliedChanges,
        {
            "stateChanges": [
                {
                    "offerId": _OFFER,
                    "states": [{"name": "SAVE", "value": "SAVED", "updatedAt": _NOW}],
                },
                {
                    "offerId": _SAVED_OFFER,
                    "states": [{"name": "SAVE", "value": "UNSAVED", "updatedAt": _NOW}],
                },
            ]
        },
        _WRITE_ERRORS,
        body={
            "stateChanges": [
                {"offerId": _OFFER, "states": [{"name": "SAVE", "value": "SAVED"}]},
                {"offerId": _SAVED_OFFER, "states": [{"name": "SAVE", "value": "UNSAVED"}]},
            ]
        },
    ),
}

# ---------------------------------------------------------------- the answers

_ERRORS = {
    400: "Invalid request (VALIDATION_ERROR), or a member token with Collector-Number"
    " (COLLECTOR_AMBIGUOUS)",
    401: "No or invalid token (answered by API Gateway)",
    403: "The token names no collector, or a collector it may not (FORBIDDEN); or it lacks the"
    " route's scope (API Gateway's own answer: GatewayMessage)",
    404: "AIR MILES does not know the offer (OFFER_NOT_FOUND)",
    409: "Idempotency-Key reused with another body, or the first request still in flight"
    " (IDEMPOTENCY_CONFLICT)",
    413: "Body over 64 KiB (PAYLOAD_TOO_LARGE)",
    415: "Body not application/json (UNSUPPORTED_MEDIA_TYPE)",
    429: "AIR MILES is throttling (RATE_LIMITED), with Retry-After when known; or the stage"
    " is (API Gateway's own answer: GatewayMessage)",
    502: "AIR MILES failed or answered something unusable (UPSTREAM_ERROR)",
    503: "Secrets Manager, KMS or DynamoDB unavailable (DEPENDENCY_UNAVAILABLE); the message"
    " says how",
    504: "AIR MILES did not answer in time (UPSTREAM_TIMEOUT)",
}
# The statuses API Gateway answers too, with its own body (GatewayMessage): 401 only so; 403
# for a token without the route's scope, 429 for the stage's throttling.
_GATEWAY_MESSAGES = {401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests"}
# A change's answer lost (OUTCOME_UNKNOWN): what the writes' 502 and 504 add.
_UNKNOWN = (
    "; or the change was sent and its answer lost (OUTCOME_UNKNOWN): it may or may not have "
    "been applied. Read the states again and, if the change is not there, send it again with a "
    "new Idempotency-Key; a repeat with the same key gets this answer again "
    "(Idempotent-Replayed: true) and sends nothing"
)
_WRITE_DESCRIPTIONS = {502: _ERRORS[502] + _UNKNOWN, 504: _ERRORS[504] + _UNKNOWN}


def _error_examples(*examples: tuple[str, OfferStateError]) -> dict[str, object]:
    """(summary, error) as the examples of an error answer, by code: the answers as the
    gateway writes them (errors.py)."""
    return {
        error.code: _example(summary, error.to_body(_CORRELATION_ID)) for summary, error in examples
    }


_INVALID = ValidationError(
    "The request is not valid (offerId.0: Input should be a valid UUID, invalid length: found 3).",
    details=[
        {"field": "offerId.0", "message": "Input should be a valid UUID, invalid length: found 3"}
    ],
)
_IN_FLIGHT = IdempotencyConflictError(
    "A request with this Idempotency-Key is still in flight; retry shortly."
)
_ERROR_EXAMPLES: dict[int, dict[str, object]] = {
    400: _error_examples(
        ("An offer id that is not a UUID", _INVALID),
        ("A member token with Collector-Number", CollectorAmbiguousError()),
    ),
    401: {},  # API Gateway's alone (_GATEWAY_MESSAGES)
    403: _error_examples(("The token names no collector", ForbiddenError())),
    404: _error_examples(("AIR MILES does not know an offer", OfferNotFoundError())),
    409: _error_examples(("The key was used with other changes", IdempotencyConflictError()))
    # The same code, once more: the first request with the key is still running.
    | {
        "IN_FLIGHT": _example(
            "The first request is still running", _IN_FLIGHT.to_body(_CORRELATION_ID)
        )
    },
    413: _error_examples(("A body over 64 KiB", PayloadTooLargeError())),
    415: _error_examples(("A body that is not JSON", UnsupportedMediaTypeError())),
    429: _error_examples(("AIR MILES is throttling", RateLimitedError())),
    502: _error_examples(("AIR MILES failed", UpstreamError("AIR MILES answered HTTP 500."))),
    503: _error_examples(
        (
            "KMS was too slow",
            DependencyUnavailableError(
                "The pseudonym key could not be used: KMS did not answer in time.",
                dependency="kms:GenerateMac",
            ),
        )
    ),
    504: _error_examples(("AIR MILES did not answer in time", UpstreamTimeoutError())),
}
# A change's answer lost: what the writes' 502 and 504 may also be.
_UNKNOWN_EXAMPLES = {
    502: _error_examples(
        (
            "The connection closed after the change was sent",
            unknown_outcome(UpstreamError("AIR MILES closed the connection without an answer.")),
        )
    ),
    504: _error_examples(
        ("No answer in time to a change sent", unknown_outcome(UpstreamTimeoutError()))
    ),
}

_SUCCESS = {
    "description": "Success. Every answer carries X-Correlation-Id; a PUT replayed from its "
    "Idempotency-Key also Idempotent-Replayed: true.",
    "headers": {
        "X-Correlation-Id": {"schema": {"type": "string", "format": "uuid"}},
        "Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]}},
    },
}


def route_docs(route_key: str) -> dict[str, Any]:
    """A route decorator's OpenAPI arguments: its operation (`OPERATIONS`), the scope it
    needs, and what it answers, with examples (the success body's schema comes from the
    route's return annotation). Keyword arguments of Powertools' decorator, each of its own
    type: hence `Any`."""
    operation = OPERATIONS[route_key]
    route = COLLECTOR_ROUTES.get(route_key)
    writes = route is not None and route.scope == WRITE_SCOPE
    answer = {
        "model": operation.model,
        "examples": {"ok": _example(operation.summary, operation.answer)},
    }
    responses: dict[int, object] = {200: {**_SUCCESS, "content": {"application/json": answer}}}
    for status in operation.errors:
        examples = _ERROR_EXAMPLES[status] | (_UNKNOWN_EXAMPLES.get(status, {}) if writes else {})
        description = (_WRITE_DESCRIPTIONS if writes else {}).get(status, _ERRORS[status])
        responses[status] = {
            "description": description,
            "content": {"application/json": _error_content(status, examples)},
        }
    return {
        "operation_id": operation.operation_id,
        "tags": [operation.tag],
        "summary": operation.summary,
        "description": operation.description,
        "security": [{SECURITY_SCHEME: [route.scope]}] if route is not None else [],
        "responses": responses,
    }


def _error_content(status: int, examples: dict[str, object]) -> dict[str, object]:
    """An error status's body: ErrorAnswer; API Gateway's GatewayMessage where it answers
    that status itself (401 alone; 403 and 429 as well as the gateway's own)."""
    message = _GATEWAY_MESSAGES.get(status)
    if message is None:
        return {"model": ErrorAnswer, "examples": examples}
    examples = examples | {
        "API_GATEWAY": _example("API Gateway's own answer", {"message": message})
    }
    if status == 401:
        return {"model": GatewayMessage, "examples": examples}
    return {"schema": {"oneOf": [_ref(ErrorAnswer), _ref(GatewayMessage)]}, "examples": examples}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def parameter_examples(route_key: str) -> Mapping[str, object]:
    """The route's query parameters' example values, by name (local/openapi.py places those
    of the parameters Powertools makes from a query model: it cannot)."""
    return OPERATIONS[route_key].parameters


def _body_examples(route_key: str) -> dict[str, Any]:
    # Powertools' `openapi_examples`: its Example model validates the dict.
    return {"example": _example("A request", OPERATIONS[route_key].body)}


# ---------------------------------------------------------------- the parameters

# Headers are strings, never null: each is declared as one (not as the Optional its Python
# type is). Idempotency-Key by its pattern rather than `format: uuid`: a generator may type a
# uuid-format header as a UUID object and hand that to its HTTP library as is, which refuses
# it (openapi-python-client 0.29 does).
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
CollectorNumberHeader = Annotated[
    str | None,
    WithJsonSchema({"type": "string", "pattern": upstream.COLLECTOR_NUMBER_PATTERN}),
    Header(
        alias="collector-number",
        description="Machine tokens only: the collector (11 digits). A member token names its"
        " own: do not send it then.",
    ),
]
LocalTimeHeader = Annotated[
    LocalTime | None,
    WithJsonSchema({"type": "string", "pattern": upstream.LOCAL_TIME_PATTERN}),
    Header(
        alias="x-local-time",
        description="The caller's wall-clock time, YYYY-MM-DDTHH:MM:SS, no zone; passed to"
        " AIR MILES",
        openapi_examples={"example": {"value": "2026-11-25T19:31:01"}},
    ),
]
IdempotencyKeyHeader = Annotated[
    UUID | None,
    WithJsonSchema({"type": "string", "pattern": UUID_PATTERN}),
    Header(
        alias="idempotency-key",
        description="A UUID, new for each intended change: a repeat with the same key and body"
        " within 24 h gets the first answer again (Idempotent-Replayed: true) without calling"
        " AIR MILES",
        openapi_examples={"example": {"value": "5c0ffee0-1d2e-4f3a-8b4c-5d6e7f8a9b0c"}},
    ),
]
OfferIdsQuery = Annotated[
    OfferIdList,
    Query(
        alias="offerId",
        description="1 to 100 offer ids (UUIDs), repeated or comma-separated",
        openapi_examples={
            "example": {"value": OPERATIONS["GET /v1/offers/states"].parameters["offerId"]}
        },
    ),
]
OfferIdPath = Annotated[UUID, Path(description="The offer")]
StatesBodyParam = Annotated[
    StatesBody,
    Body(embed=False, openapi_examples=_body_examples("PUT /v1/offers/{offerId}/states")),
]
StateChangesBodyParam = Annotated[
    StateChanges, Body(embed=False, openapi_examples=_body_examples("PUT /v1/offers/states"))
]
