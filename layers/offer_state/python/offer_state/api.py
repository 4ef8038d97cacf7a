"""The partner API on Powertools' Event Handler: the one place where errors become HTTP
answers (docs/partner-api.md, "Errors"), every answer gets `X-Correlation-Id`, bodies are
checked, and a request's identity and audit context are built.

A function module creates `PartnerApi(service)`, declares its routes on `api.app` (with the
route table of `offer_state.routes`), gives each call `api.call_context(...)`, and its
`lambda_handler` returns `api.handle(event, context)`. `handle` starts the invocation's
deadline (offer_state.deadlines) from the Lambda context: every call made for the request
works to it.
"""

from __future__ import annotations

import base64
import json
import unicodedata
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from offer_state import snapstart
from offer_state.audit import AuditContext
from offer_state.deadlines import InvocationDeadline
from offer_state.errors import (
    OfferStateError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    ValidationError,
    error_detail,
    failure_cause,
)
from offer_state.event_handler import (
    APIGatewayHttpResolver,
    RequestValidationError,
    Response,
    declared_query_names,
)
from offer_state.identity import Identity, resolve_identity
from offer_state.observability import count, logger, server_error_answered
from offer_state.routes import COLLECTOR_ROUTES
from offer_state.service import CallContext, OfferStateService

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

MAX_BODY_BYTES = 64 * 1024
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
CORRELATION_HEADER = "X-Correlation-Id"

# Errors that mean "refused before AIR MILES was called": audited as REJECTED.
_REJECTION_STATUSES = frozenset({400, 403, 409, 413, 415})
ModelT = TypeVar("ModelT", bound=BaseModel)


class PartnerApi:
    """The partner API of a function: its resolver, with the checks, the error answers and the
    audit of a refusal that every route shares."""

    @classmethod
    def from_env(cls) -> PartnerApi:
        """A function's API, built at its cold start: the settings read once (AWS and HTTP
        clients on first use), and SnapStart's hooks registered where Lambda has them (they
        run after init)."""
        api = cls(OfferStateService.from_env())
        snapstart.register(api)
        return api

    def __init__(self, service: OfferStateService) -> None:
        self.service = service
        # A response that fails its own model is our bug: 500, never a 400 to the caller.
        # debug=False whatever POWERTOOLS_DEV says: in debug mode the resolver prints every
        # raw event, bearer token included.
        self.app = APIGatewayHttpResolver(
            enable_validation=True, response_validation_error_http_code=500, debug=False
        )
        self.app.use([_check_query_parameters])
        self.app.exception_handler(RequestValidationError)(self._invalid_request)
        self.app.exception_handler(OfferStateError)(self._failed)
        self.app.exception_handler(Exception)(self._unexpected)
        self.app.not_found(self._not_found)

    # ------------------------------------------------------------ per request

    def handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        """Resolve one payload-2.0 event into one answer, by the invocation's deadline."""
        deadline = self.service.deadline(context)
        headers = _lower(event.get("headers"))
        correlation_id = _valid_uuid(headers.get("x-correlation-id")) or str(uuid.uuid4())
        logger.set_correlation_id(correlation_id)
        logger.append_keys(route=event.get("routeKey"))
        count("Requests")  # also keeps every invocation's metrics blob non-empty
        with deadline.current():
            try:
                _check_body(event, headers)
            except OfferStateError as exc:  # refused before routing
                answer = self._error_answer(exc, event, correlation_id, deadline)
            else:
                self.app.append_context(correlation_id=correlation_id, deadline=deadline)
                answer = self.app.resolve(event, context)
        if answer["statusCode"] >= 500:
            # Every 5xx leaves here, whichever path made it: what the partner saw, counted.
            server_error_answered(
                getattr(context, "function_name", "unknown"),
                event.get("routeKey") or "unknown",
                answer["statusCode"],
            )
        answer_headers = answer.setdefault("headers", {})
        answer_headers[CORRELATION_HEADER] = correlation_id
        if str(answer_headers.get("Content-Type", "")).startswith("application/json"):
            answer_headers["Content-Type"] = JSON_CONTENT_TYPE
        return answer

    def call_context(self, collector_header: str | None) -> CallContext:
        """The current request's call context (a collector route): its identity, its audit
        context and the Lambda invocation serving it."""
        event = self.app.current_event
        route = COLLECTOR_ROUTES[self._route_key(event.raw_event)]
        identity = self._identity(_jwt(event.raw_event), collector_header, route.scope)
        return CallContext(
            identity,
            self._audit_context(event.raw_event, self.correlation_id),
            self.deadline,
            self.app.lambda_context,
        )

    @property
    def correlation_id(self) -> str:
        correlation_id: str = self.app.context["correlation_id"]
        return correlation_id

    @property
    def deadline(self) -> InvocationDeadline:
        """The current invocation's deadline."""
        deadline: InvocationDeadline = self.app.context["deadline"]
        return deadline

    def json(self, model: ModelT, headers: Mapping[str, str] | None = None) -> Response[ModelT]:
        return Response(
            status_code=200,
            content_type=JSON_CONTENT_TYPE,
            body=model,
            headers=dict(headers or {}),
        )

    # ------------------------------------------------------------ errors

    def _invalid_request(self, exc: RequestValidationError) -> Response[str]:
        details = [error_detail(e) for e in exc.errors()]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:3])
        error = ValidationError(f"The request is not valid ({summary}).", details=details)
        return self._failed(error)

    def _failed(self, exc: OfferStateError) -> Response[str]:
        answer = self._error_answer(
            exc,
            self.app.current_event.raw_event,
            self.app.context.get("correlation_id", ""),
            self.app.context.get("deadline"),
        )
        return Response(
            status_code=answer["statusCode"],
            content_type=JSON_CONTENT_TYPE,
            body=answer["body"],
            headers=answer["headers"],
        )

    def _unexpected(self, _exc: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return self._failed(OfferStateError("The gateway failed unexpectedly."))

    def _not_found(self, _exc: Exception) -> Response[str]:
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
        self,
        exc: OfferStateError,
        event: Mapping[str, Any],
        correlation_id: str,
        deadline: InvocationDeadline | None,
    ) -> dict[str, Any]:
        extra: dict[str, object] = {
            "status": exc.status,
            "errorCode": exc.code,
            "upstreamStatus": exc.upstream_status,
            "upstreamResponseCode": exc.response_code,
        }
        if exc.replayed:
            extra["idempotentReplayed"] = True  # the first request's answer, given again
        if exc.status >= 500:
            # A 5xx is diagnosed from this one line: what failed, and when in the invocation.
            extra.update(failure_cause(exc))
            if deadline is not None:
                extra.update(deadline.timings())
        log = logger.warning if exc.status < 500 else logger.error
        log("request failed", extra=extra)
        if (
            exc.status in _REJECTION_STATUSES
            and exc.upstream_status is None
            and deadline is not None
        ):
            self._audit_rejection(exc, event, correlation_id, deadline)
        headers = {"Content-Type": JSON_CONTENT_TYPE, **exc.answer_headers()}
        return {
            "statusCode": exc.status,
            "headers": headers,
            "body": json.dumps(exc.to_body(correlation_id), separators=(",", ":")),
            "isBase64Encoded": False,
        }

    def _audit_rejection(
        self,
        exc: OfferStateError,
        event: Mapping[str, Any],
        correlation_id: str,
        deadline: InvocationDeadline,
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
                identity = self._identity(jwt, collector_header, route.scope)
            except OfferStateError:
                continue
            context = self._audit_context(event, correlation_id)
            deadline.finishing()  # AIR MILES is not called: the reserve may be used
            self.service.reject(CallContext(identity, context, deadline), route.action, exc)
            return

    def _identity(
        self, jwt: Mapping[str, Any], collector_header: str | None, scope: str
    ) -> Identity:
        settings = self.service.settings
        return resolve_identity(
            jwt,
            collector_header,
            collector_claim=settings.collector_claim,
            required_scope=scope,
            machine_client_ids=settings.machine_client_ids,
        )

    def _route_key(self, event: Mapping[str, Any]) -> str:
        """`METHOD /path` as template.yaml declares it: API Gateway's routeKey, else the
        route Powertools matched (an event written by hand may lack routeKey)."""
        key: str = event.get("routeKey", "")
        if key in COLLECTOR_ROUTES:
            return key
        try:
            request = self.app.request  # the route's path as OpenAPI writes it: /a/{b}
        except RuntimeError:  # refused before routing: no route matched
            return key
        return f"{request.method} {request.route}"

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
    given = app.current_event.raw_event.get("queryStringParameters") or {}
    if not given:
        return next_middleware(app)
    known = declared_query_names(app)
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
