"""The partner API on Powertools' Event Handler: the one place where errors become HTTP
answers (DESIGN.md, "Errors"), every answer gets `X-Correlation-Id`, bodies are checked, and
a request's identity and audit context are built.

A function module creates `PartnerApi(service)`, declares its routes on `api.app`, and its
`lambda_handler` returns `api.handle(event, context)`.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
import uuid
from collections.abc import Mapping
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Header
from pydantic import BaseModel

from offer_state.audit import AuditContext
from offer_state.errors import (
    OfferStateError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    ValidationError,
    error_detail,
)
from offer_state.identity import READ_SCOPE, WRITE_SCOPE, resolve_identity
from offer_state.models.airmiles_requests import LocalTime
from offer_state.models.partner import ErrorAnswer, GatewayMessage
from offer_state.observability import count, logger
from offer_state.service import (
    COUNT_STATES,
    FIND_STATES,
    GET_STATES,
    UPDATE_STATES,
    CallContext,
    OfferStateService,
    idempotency_conflict,
)

MAX_BODY_BYTES = 64 * 1024
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
CORRELATION_HEADER = "X-Correlation-Id"

# Routes that touch a collector: what they are audited as, and the scope they need.
# (API Gateway checks the scopes too; template.yaml declares the same ones.)
COLLECTOR_ROUTES: dict[str, tuple[str, str]] = {
    "GET /v1/offers/states": (GET_STATES, READ_SCOPE),
    "GET /v1/offers/states/find": (FIND_STATES, READ_SCOPE),
    "GET /v1/offers/states/count": (COUNT_STATES, READ_SCOPE),
    "PUT /v1/offers/{offerId}/states": (UPDATE_STATES, WRITE_SCOPE),
    "PUT /v1/offers/states": (UPDATE_STATES, WRITE_SCOPE),
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
    scope = COLLECTOR_ROUTES[route_key][1]
    statuses = _READ_ERRORS if scope == READ_SCOPE else _WRITE_ERRORS
    responses = {200: _SUCCESS, **_error_responses(*statuses)}
    return {"security": [{SECURITY_SCHEME: [scope]}], "responses": responses}


def _error_responses(*statuses: int) -> dict[int, Any]:
    return {
        status: {
            "description": _ERRORS[status],
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

# Errors that mean "refused before AIR MILES was called": audited as REJECTED.
_REJECTION_STATUSES = frozenset({400, 403, 409, 413, 415})


class PartnerApi:
    def __init__(self, service: OfferStateService) -> None:
        self.service = service
        # A response that fails its own model is our bug: 500, never a 400 to the caller.
        self.app = APIGatewayHttpResolver(
            enable_validation=True, response_validation_error_http_code=500
        )
        self.app.use([_check_query_parameters])
        self.app.exception_handler(RequestValidationError)(self._invalid_request)
        self.app.exception_handler(OfferStateError)(self._failed)
        self.app.exception_handler(Exception)(self._unexpected)
        self.app.not_found(self._not_found)

    # ------------------------------------------------------------ per request

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """Resolve one payload-2.0 event into one answer."""
        headers = _lower(event.get("headers"))
        correlation_id = _valid_uuid(headers.get("x-correlation-id")) or str(uuid.uuid4())
        logger.set_correlation_id(correlation_id)
        logger.append_keys(route=event.get("routeKey"))
        count("Requests")  # also keeps every invocation's metrics blob non-empty
        self.service.begin_invocation(context)
        try:
            _check_body(event, headers)
        except OfferStateError as exc:  # refused before routing
            answer = self._error_answer(exc, event, correlation_id)
        else:
            self.app.append_context(correlation_id=correlation_id)
            answer = self.app.resolve(event, context)
        answer_headers = answer.setdefault("headers", {})
        answer_headers[CORRELATION_HEADER] = correlation_id
        if str(answer_headers.get("Content-Type", "")).startswith("application/json"):
            answer_headers["Content-Type"] = JSON_CONTENT_TYPE
        return answer

    def call(self, collector_header: str | None) -> CallContext:
        """The identity and audit context of the current request (a collector route)."""
        event = self.app.current_event
        _action, scope = COLLECTOR_ROUTES[self._route_key(event.raw_event)]
        identity = resolve_identity(
            _jwt(event.raw_event),
            collector_header,
            collector_claim=self.service.settings.collector_claim,
            required_scope=scope,
        )
        return CallContext(identity, self._audit_context(event.raw_event, self.correlation_id))

    @property
    def correlation_id(self) -> str:
        return self.app.context["correlation_id"]

    def json(self, model: BaseModel, headers: Mapping[str, str] | None = None) -> Response:
        return Response(
            status_code=200,
            content_type=JSON_CONTENT_TYPE,
            body=model,
            headers=dict(headers or {}),
        )

    # ------------------------------------------------------------ errors

    def _invalid_request(self, exc: RequestValidationError) -> Response:
        details = [error_detail(e) for e in exc.errors()]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:3])
        error = ValidationError(f"The request is not valid ({summary}).", details=details)
        return self._failed(error)

    def _failed(self, exc: OfferStateError) -> Response:
        answer = self._error_answer(
            exc, self.app.current_event.raw_event, self.app.context.get("correlation_id", "")
        )
        return Response(
            status_code=answer["statusCode"],
            content_type=JSON_CONTENT_TYPE,
            body=answer["body"],
            headers=answer["headers"],
        )

    def _unexpected(self, exc: Exception) -> Response:
        mapped = idempotency_conflict(exc)
        if mapped is not None:
            return self._failed(mapped)
        logger.exception("unhandled error")
        return self._failed(OfferStateError("The gateway failed unexpectedly."))

    def _not_found(self, _exc: Exception) -> Response:
        if self.app.current_event.raw_event.get("routeKey") in COLLECTOR_ROUTES:
            # API Gateway matched a declared route, so the path is ours, but its parameter is
            # not even shaped like an id (a character no route takes): a bad request.
            invalid = ValidationError(
                "The path is not valid.",
                details=[{"field": "offerId", "message": "not a valid offer id"}],
            )
            return self._failed(invalid)
        # As API Gateway answers a route it does not know.
        return Response(
            status_code=404, content_type=JSON_CONTENT_TYPE, body='{"message":"Not Found"}'
        )

    def _error_answer(
        self, exc: OfferStateError, event: Mapping[str, Any], correlation_id: str
    ) -> dict[str, Any]:
        log = logger.warning if exc.status < 500 else logger.error
        log(
            "request failed",
            extra={
                "status": exc.status,
                "errorCode": exc.code,
                "upstreamStatus": exc.upstream_status,
                "upstreamResponseCode": exc.response_code,
            },
        )
        if exc.status in _REJECTION_STATUSES and exc.upstream_status is None:
            self._audit_rejection(exc, event, correlation_id)
        headers = {"Content-Type": JSON_CONTENT_TYPE}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(int(exc.retry_after))
        return {
            "statusCode": exc.status,
            "headers": headers,
            "body": json.dumps(exc.to_body(correlation_id), separators=(",", ":")),
            "isBase64Encoded": False,
        }

    def _audit_rejection(
        self, exc: OfferStateError, event: Mapping[str, Any], correlation_id: str
    ) -> None:
        route = COLLECTOR_ROUTES.get(self._route_key(event))
        if route is None:
            return
        jwt = _jwt(event)
        header = _lower(event.get("headers")).get("collector-number")
        # With the header as sent; then without it (a member token that also sent one is
        # filed under its own claim). No trustworthy collector: nowhere to file it, and the
        # log line already keeps the request.
        for collector_header in dict.fromkeys((header, None)):
            try:
                identity = resolve_identity(
                    jwt,
                    collector_header,
                    collector_claim=self.service.settings.collector_claim,
                    required_scope=route[1],
                )
            except OfferStateError:
                continue
            context = self._audit_context(event, correlation_id)
            self.service.reject(CallContext(identity, context), route[0], exc)
            return

    def _route_key(self, event: Mapping[str, Any]) -> str:
        """`METHOD /path` as template.yaml declares it: API Gateway's routeKey, else the
        route Powertools matched (an event written by hand may lack routeKey)."""
        key = event.get("routeKey", "")
        route = self.app.context.get("_route")
        if key not in COLLECTOR_ROUTES and route is not None:
            key = f"{route.method} " + re.sub(r"<(\w+)>", r"{\1}", route.path)
        return key

    def _audit_context(self, event: Mapping[str, Any], correlation_id: str) -> AuditContext:
        context = event.get("requestContext") or {}
        http = context.get("http") or {}
        claims = _jwt(event).get("claims") or {}
        return AuditContext(
            route=self._route_key(event),
            request_id=context.get("requestId") or str(uuid.uuid4()),
            correlation_id=correlation_id,
            origin_client=self.service.settings.client.origin_client,
            principal=claims.get("sub"),
            source_ip=http.get("sourceIp"),
            user_agent=(http.get("userAgent") or "")[:256] or None,
        )


# ---------------------------------------------------------------- helpers


def _check_query_parameters(app: APIGatewayHttpResolver, next_middleware: Any) -> Any:
    """Refuse what validation would let through silently: a misspelt (unknown) parameter,
    and values with control characters or surrounding spaces (`pageSize=1%0A` parses as 1)."""
    route = app.context.get("_route")
    given = app.current_event.raw_event.get("queryStringParameters") or {}
    if route is None or not given:
        return next_middleware(app)
    known: set[str] = set()
    for param in route.dependant.query_params:
        annotation = param.field_info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            known |= {f.alias or name for name, f in annotation.model_fields.items()}
        else:
            known.add(param.alias)
    details = [
        {"field": name[:64], "message": "unknown query parameter"}
        for name in sorted(set(given) - known)[:10]
    ]
    details += [
        {"field": name[:64], "message": "control characters or surrounding spaces"}
        for name, value in sorted(given.items())
        if name in known and _unprintable(value)
    ]
    if details:
        raise ValidationError("The query string is not valid.", details=details)
    return next_middleware(app)


def _unprintable(value: str) -> bool:
    return value != value.strip() or any(unicodedata.category(c) == "Cc" for c in value)


def _check_body(event: Mapping[str, Any], headers: Mapping[str, str]) -> None:
    """413, 415 and malformed JSON, before anything else looks at a body."""
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "")
    body = event.get("body")
    if method not in ("PUT", "POST", "PATCH") and not body:
        return
    raw = body or ""
    data = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    if len(data) > MAX_BODY_BYTES:
        raise PayloadTooLargeError()
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaTypeError()
    try:
        json.loads(data)
    except (ValueError, RecursionError):
        raise ValidationError(
            "The body is not valid JSON.", details=[{"field": "body", "message": "malformed JSON"}]
        ) from None


def _jwt(event: Mapping[str, Any]) -> dict[str, Any]:
    """What API Gateway's JWT authorizer passed on: `{"claims": ..., "scopes": ...}`."""
    return ((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt") or {}


def _lower(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {k.lower(): v for k, v in (headers or {}).items()}


def _valid_uuid(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
