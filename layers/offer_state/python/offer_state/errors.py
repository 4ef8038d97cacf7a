"""One exception hierarchy for the whole gateway, each class knowing its HTTP answer.

The client raises these; `api.PartnerApi` turns them into the partner API's one error shape
(docs/partner-api.md, "Errors"), in one place. Messages are fixed sentences written here or by
the raiser: they never carry a token, a secret or a collector number.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypedDict, Unpack

if TYPE_CHECKING:
    from pydantic import ValidationError as PydanticValidationError

# One field's problem in an error answer: `{"field": ..., "message": ...}` (ErrorDetail in
# openapi.json; `field` is null when the problem is the whole request's).
Detail = Mapping[str, str | None]


class AnswerContext(TypedDict, total=False):
    """What an error knows of the AIR MILES answer it stands for, and of the request."""

    upstream_status: int | None
    response_code: str | None
    correlation_id: str | None


class ErrorContext(AnswerContext, total=False):
    """What an `OfferStateError` may be told besides its message (its keyword arguments)."""

    details: Sequence[Detail] | None
    retry_after: float | None


class OfferStateError(Exception):
    """Base of every error the gateway answers with."""

    status: int = 500
    code: str = "INTERNAL_ERROR"
    default_message: str = "The request could not be completed."
    # True when a change was sent to AIR MILES and its answer lost (OutcomeUnknownError).
    outcome_unknown: ClassVar[bool] = False

    def __init__(
        self,
        message: str | None = None,
        *,
        upstream_status: int | None = None,
        response_code: str | None = None,
        correlation_id: str | None = None,
        details: Sequence[Detail] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.upstream_status = upstream_status
        self.response_code = response_code
        self.correlation_id = correlation_id
        self.details = details or []
        self.retry_after = retry_after
        # The answer a request got first, given again for its Idempotency-Key.
        self.replayed = False
        super().__init__(self.message)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, upstream_status={self.upstream_status}, "
            f"response_code={self.response_code!r}, correlation_id={self.correlation_id!r})"
        )

    def again(self, correlation_id: str | None) -> OfferStateError:
        """This error once more, for another request (a failure kept and answered again)."""
        again = copy.copy(self)
        again.correlation_id = correlation_id
        return again.with_traceback(None)

    def to_body(self, correlation_id: str) -> dict[str, object]:
        """The partner-facing error body (docs/partner-api.md, "Errors")."""
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error, "correlationId": correlation_id}

    def answer_headers(self) -> dict[str, str]:
        """The answer's own headers (besides Content-Type and X-Correlation-Id)."""
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(int(self.retry_after))
        if self.replayed:
            headers["Idempotent-Replayed"] = "true"
        return headers


class ValidationError(OfferStateError):
    """The request is malformed; nothing was sent upstream (or upstream said so: 400)."""

    status = 400
    code = "VALIDATION_ERROR"
    default_message = "The request is not valid."


class CollectorAmbiguousError(ValidationError):
    code = "COLLECTOR_AMBIGUOUS"
    default_message = "A member token names its own collector: do not send Collector-Number."


class UnauthorizedError(OfferStateError):
    status = 401
    code = "UNAUTHORIZED"
    default_message = "A valid bearer token is required."


class ForbiddenError(OfferStateError):
    status = 403
    code = "FORBIDDEN"
    default_message = "The token does not allow this request."


class OfferNotFoundError(OfferStateError):
    status = 404
    code = "OFFER_NOT_FOUND"
    default_message = "AIR MILES does not know one of the offers."


class IdempotencyConflictError(OfferStateError):
    status = 409
    code = "IDEMPOTENCY_CONFLICT"
    default_message = "This Idempotency-Key was already used with another request."


class PayloadTooLargeError(OfferStateError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"
    default_message = "The request body is larger than 64 KiB."


class UnsupportedMediaTypeError(OfferStateError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    default_message = "The request body must be JSON (Content-Type: application/json)."


class RateLimitedError(OfferStateError):
    status = 429
    code = "RATE_LIMITED"
    default_message = "AIR MILES is throttling requests; try again later."


class UpstreamError(OfferStateError):
    """AIR MILES failed or answered something we cannot use."""

    status = 502
    code = "UPSTREAM_ERROR"
    default_message = "AIR MILES answered with an error."


class UpstreamAuthError(UpstreamError):
    """AIR MILES refused our credentials or our token (our configuration, not the caller's)."""

    default_message = "AIR MILES refused the gateway's credentials."


class UpstreamUnavailableError(UpstreamError):
    """AIR MILES could not be reached, or stayed unavailable through every retry."""

    default_message = "AIR MILES is unavailable."


class UpstreamTimeoutError(OfferStateError):
    status = 504
    code = "UPSTREAM_TIMEOUT"
    default_message = "AIR MILES did not answer in time."


class NotSentError(UpstreamTimeoutError):
    """No attempt was started: too little was left of the deadline. Nothing was sent."""

    default_message = "AIR MILES was not called: too little time was left to get its answer."

    @classmethod
    def for_change(cls, correlation_id: str | None) -> NotSentError:
        """The error of a change that was not sent (it says that nothing was changed)."""
        return cls(
            "The change was not sent to AIR MILES: too little time was left to send it and get "
            "its answer. Nothing was changed; try again.",
            correlation_id=correlation_id,
        )


class SavedOutcome(TypedDict):
    """What an idempotency record keeps of an `OutcomeUnknownError` (JSON)."""

    status: int
    message: str
    upstreamStatus: int | None
    responseCode: str | None


class OutcomeUnknownError(OfferStateError):
    """A change was sent to AIR MILES and its answer lost (none in time, a connection closed,
    an answer cut off or unreadable, a 5xx but 503): it may or may not have been applied.
    `status` is its cause's: 504 when AIR MILES did not answer in time, else 502. Audited
    UNKNOWN; the answer is kept for its Idempotency-Key (docs/partner-api.md, "Outcome
    unknown"), so this error is also saved and replayed (`saved`, `replay`)."""

    status = 502
    code = "OUTCOME_UNKNOWN"
    outcome_unknown = True
    default_message = "AIR MILES's answer to the change was lost."
    ADVICE = (
        "The change may or may not have been applied: read the states again and, if the "
        "change is not there, send it again with a new Idempotency-Key."
    )

    def __init__(
        self, message: str | None = None, *, status: int = 502, **kwargs: Unpack[ErrorContext]
    ) -> None:
        super().__init__(message, **kwargs)
        self.status = status

    def saved(self) -> SavedOutcome:
        """What an idempotency record keeps of this answer (JSON)."""
        return {
            "status": self.status,
            "message": self.message,
            "upstreamStatus": self.upstream_status,
            "responseCode": self.response_code,
        }

    @classmethod
    def replay(cls, saved: SavedOutcome, correlation_id: str | None) -> OutcomeUnknownError:
        """The answer `saved` kept, given again (`Idempotent-Replayed: true`) to a repeat."""
        again = cls(
            saved["message"],
            status=saved["status"],
            upstream_status=saved.get("upstreamStatus"),
            response_code=saved.get("responseCode"),
            correlation_id=correlation_id,
        )
        again.replayed = True
        return again


class DependencyUnavailableError(OfferStateError):
    """Secrets Manager, KMS or DynamoDB cannot be used; `dependency` names which (for the log
    line, never the answer). `dependency_unavailable` makes one that says how it failed."""

    status = 503
    code = "DEPENDENCY_UNAVAILABLE"
    default_message = "A service the gateway depends on is unavailable."

    def __init__(
        self, message: str | None = None, *, dependency: str, **kwargs: Unpack[ErrorContext]
    ) -> None:
        super().__init__(message, **kwargs)
        self.dependency = dependency


class Dependency(NamedTuple):
    """An AWS dependency whose failure is a 503: `name` is the log line's `dependency`; the
    rest make the answer's message."""

    name: str
    service: str
    failed: str  # what its failure means, a sentence without its full stop
    resource: str  # what the service holds for the gateway


PSEUDONYM_KEY = Dependency("kms:GenerateMac", "KMS", "The pseudonym key could not be used", "key")
SECRET = Dependency(
    "secretsmanager:GetSecretValue",
    "Secrets Manager",
    "The gateway's secret could not be read",
    "secret",
)
AUDIT_TRAIL = Dependency(
    "dynamodb:AuditTable", "DynamoDB", "The audit trail could not be written", "table"
)
IDEMPOTENCY_STORE = Dependency(
    "dynamodb:IdempotencyTable", "DynamoDB", "The idempotency store could not be used", "table"
)

# How an AWS call failed, by the service's error code or botocore's error class (the
# `awsError` of `failure_cause`), in the words of a 503's message.
_HOW_IT_FAILED: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"ReadTimeoutError", "ConnectTimeoutError"}), "{service} did not answer in time"),
    (
        frozenset({"AwsTimeLimitReached"}),
        "too little of the request's time was left to wait for {service}",
    ),
    (
        frozenset(
            {
                "ThrottlingException",
                "Throttling",
                "ThrottledException",
                "TooManyRequestsException",
                "ProvisionedThroughputExceededException",
                "RequestLimitExceeded",
                "LimitExceededException",
            }
        ),
        "{service} is throttling the gateway's calls",
    ),
    (
        frozenset({"AccessDeniedException", "AccessDenied"}),
        "{service} denied the gateway access to the {resource}",
    ),
    (
        frozenset({"DisabledException", "KMSInvalidStateException", "KeyUnavailableException"}),
        "the {resource} is disabled or pending deletion in {service}",
    ),
    (
        frozenset({"ResourceNotFoundException", "NotFoundException"}),
        "{service} has no such {resource}",
    ),
    (
        frozenset({"EndpointConnectionError", "ConnectionClosedError", "ConnectionError"}),
        "{service} could not be reached",
    ),
)


def dependency_unavailable(
    dependency: Dependency, failure: BaseException
) -> DependencyUnavailableError:
    """The 503 of `dependency` failing with `failure` (a botocore error, or an error whose
    chain of causes holds one: Powertools wraps them), its message saying what happened: a
    timeout, a throttle, a denial, a disabled key, ... Raise it `from failure`: its log line
    then names the AWS error too (`failure_cause`)."""
    aws_error = failure_cause(failure).get("awsError")
    how = next((how for codes, how in _HOW_IT_FAILED if aws_error in codes), None)
    if how is None and aws_error is not None:
        how = "{service} answered with an error"
    message = dependency.failed
    if how is not None:
        message += ": " + how.format(service=dependency.service, resource=dependency.resource)
    return DependencyUnavailableError(message + ".", dependency=dependency.name)


def failure_cause(error: BaseException) -> dict[str, str]:
    """What made `error` happen, for its log line: the dependency it names, and the AWS error
    (the service's error code, or botocore's error class: a connect or read timeout, a
    connection refused, `AwsTimeLimitReached` when the invocation's deadline left no time for
    an attempt) found in its chain of causes, explicit or suppressed (`raise ... from None`);
    else the first cause's class (a read timeout of the AIR MILES call, say)."""
    cause: dict[str, str] = {}
    dependency = getattr(error, "dependency", None)
    if dependency:
        cause["dependency"] = dependency
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = _aws_error(current)
        if found is not None:
            cause.update(found)
            break
        if current is not error and "cause" not in cause:
            cause["cause"] = type(current).__name__  # the first cause (a requests error, …)
        current = current.__cause__ or current.__context__
    return cause


def _aws_error(error: BaseException) -> dict[str, str] | None:
    # By shape, not by class: botocore is loaded with the first AWS client, never here.
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        code = str(response["Error"].get("Code", "ClientError"))
        return {"awsError": code, "awsOperation": str(getattr(error, "operation_name", ""))}
    if any(cls.__module__.startswith("botocore.") for cls in type(error).__mro__):
        return {"awsError": type(error).__name__}
    return None


def unknown_outcome(error: OfferStateError) -> OutcomeUnknownError:
    """The answer to a change that was sent and failed with `error` after it may have been
    applied: OUTCOME_UNKNOWN, with `error`'s status (502, or 504 for no answer in time), its
    message telling the caller what to do. `error` is its cause."""
    unknown = OutcomeUnknownError(
        f"{error.message} {OutcomeUnknownError.ADVICE}",
        status=error.status,
        upstream_status=error.upstream_status,
        response_code=error.response_code,
        correlation_id=error.correlation_id,
    )
    unknown.__cause__ = error
    return unknown


# Endpoints where an upstream 404 means "that offer does not exist" [doc: PUT; GET by analogy].
_OFFER_ENDPOINTS = frozenset({"get", "put"})


def error_for_upstream_status(
    status: int,
    *,
    endpoint: str,
    response_code: str | None = None,
    correlation_id: str | None = None,
    retry_after: float | None = None,
    member_token: bool = False,
) -> OfferStateError:
    """The exception for an AIR MILES answer that is not a success (one mapping for all)."""
    context: AnswerContext = {
        "upstream_status": status,
        "response_code": response_code,
        "correlation_id": correlation_id,
    }
    if status in (400, 401, 403):
        return _refused(status, endpoint == "token", member_token, context)
    if status == 404 and endpoint in _OFFER_ENDPOINTS:
        return OfferNotFoundError(**context)
    if status == 429:
        return RateLimitedError(retry_after=retry_after, **context)
    if status in _PLAIN_ERRORS:
        return _PLAIN_ERRORS[status](**context)
    return UpstreamError(f"AIR MILES answered HTTP {status}.", **context)


# The answers whose error takes nothing but the answer's context.
_PLAIN_ERRORS: dict[int, type[OfferStateError]] = {
    503: UpstreamUnavailableError,
    504: UpstreamTimeoutError,
}


def _refused(
    status: int, token_endpoint: bool, member_token: bool, context: AnswerContext
) -> OfferStateError:
    """A 400, 401 or 403: the gateway's credentials, the request, the member's token or the
    gateway's token refused."""
    if token_endpoint:
        return UpstreamAuthError(
            "The AIR MILES token endpoint refused the gateway's credentials.", **context
        )
    if status == 400:
        return ValidationError("AIR MILES rejected the request as invalid.", **context)
    if status == 401 and member_token:
        return UnauthorizedError("AIR MILES refused the member token.", **context)
    return UpstreamAuthError("AIR MILES refused the gateway's token.", **context)


def validation_details(exc: PydanticValidationError) -> list[dict[str, str | None]]:
    """A pydantic ValidationError as `[{"field", "message"}]`, never echoing the input
    (it may hold a token or a collector number)."""
    return [
        error_detail(e)
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def error_detail(error: Mapping[str, Any]) -> dict[str, str | None]:
    """One pydantic (or Powertools request-validation) error as `{field, message}`: only
    its location and message, never its input."""
    loc = [str(p) for p in error.get("loc", ())]
    if loc and loc[0] in ("query", "header", "path", "body"):  # Powertools' request part
        loc = loc[1:]
    if len(loc) > 1 and loc[0] in ("query", "body"):  # the name of a model parameter
        loc = loc[1:]
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "json_invalid":
        message = "malformed JSON"
    return {"field": ".".join(loc) or None, "message": message}
