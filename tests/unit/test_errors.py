from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from offer_state import errors
from offer_state.client import Collector
from offer_state.deadlines import AwsTimeLimitReached


@pytest.mark.parametrize(
    ("status", "endpoint", "member", "expected", "http", "code"),
    [
        (400, "get", False, errors.ValidationError, 400, "VALIDATION_ERROR"),
        (401, "get", False, errors.UpstreamAuthError, 502, "UPSTREAM_ERROR"),
        (401, "get", True, errors.UnauthorizedError, 401, "UNAUTHORIZED"),
        (403, "find", False, errors.UpstreamAuthError, 502, "UPSTREAM_ERROR"),
        (404, "put", False, errors.OfferNotFoundError, 404, "OFFER_NOT_FOUND"),
        (404, "get", False, errors.OfferNotFoundError, 404, "OFFER_NOT_FOUND"),
        (404, "find", False, errors.UpstreamError, 502, "UPSTREAM_ERROR"),
        (429, "count", False, errors.RateLimitedError, 429, "RATE_LIMITED"),
        (500, "put", False, errors.UpstreamError, 502, "UPSTREAM_ERROR"),
        (502, "put", False, errors.UpstreamError, 502, "UPSTREAM_ERROR"),
        (503, "put", False, errors.UpstreamUnavailableError, 502, "UPSTREAM_ERROR"),
        (504, "put", False, errors.UpstreamTimeoutError, 504, "UPSTREAM_TIMEOUT"),
        (401, "token", False, errors.UpstreamAuthError, 502, "UPSTREAM_ERROR"),
        (400, "token", False, errors.UpstreamAuthError, 502, "UPSTREAM_ERROR"),
        (418, "get", False, errors.UpstreamError, 502, "UPSTREAM_ERROR"),
    ],
)
def test_each_upstream_status_has_one_error(status, endpoint, member, expected, http, code):
    error = errors.error_for_upstream_status(
        status, endpoint=endpoint, response_code="X", correlation_id="c", member_token=member
    )
    assert type(error) is expected
    assert (error.status, error.code, error.upstream_status, error.response_code) == (
        http,
        code,
        status,
        "X",
    )


def test_error_body_has_the_documented_shape():
    error = errors.ValidationError(details=[{"field": "offerId", "message": "bad"}])
    assert error.to_body("cid") == {
        "error": {
            "code": "VALIDATION_ERROR",
            "message": "The request is not valid.",
            "details": [{"field": "offerId", "message": "bad"}],
        },
        "correlationId": "cid",
    }


def test_collector_repr_is_masked():
    assert "80000000110" not in repr(Collector("80000000110"))
    assert repr(Collector("80000000110")).endswith("0110)")


def _aws_error(code: str, operation: str = "GenerateMac") -> Exception:
    return ClientError({"Error": {"Code": code, "Message": "no"}}, operation)


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (
            lambda: ReadTimeoutError(endpoint_url="https://kms.invalid"),
            "The pseudonym key could not be used: KMS did not answer in time.",
        ),
        (
            lambda: ConnectTimeoutError(endpoint_url="https://kms.invalid"),
            "The pseudonym key could not be used: KMS did not answer in time.",
        ),
        (
            AwsTimeLimitReached,
            "The pseudonym key could not be used: too little of the request's time was left "
            "to wait for KMS.",
        ),
        (
            lambda: _aws_error("ThrottlingException"),
            "The pseudonym key could not be used: KMS is throttling the gateway's calls.",
        ),
        (
            lambda: _aws_error("AccessDeniedException"),
            "The pseudonym key could not be used: KMS denied the gateway access to the key.",
        ),
        (
            lambda: _aws_error("DisabledException"),
            "The pseudonym key could not be used: the key is disabled or pending deletion in KMS.",
        ),
        (
            lambda: _aws_error("KMSInvalidStateException"),
            "The pseudonym key could not be used: the key is disabled or pending deletion in KMS.",
        ),
        (
            lambda: _aws_error("NotFoundException"),
            "The pseudonym key could not be used: KMS has no such key.",
        ),
        (
            lambda: EndpointConnectionError(endpoint_url="https://kms.invalid"),
            "The pseudonym key could not be used: KMS could not be reached.",
        ),
        (
            lambda: _aws_error("KMSInternalException"),
            "The pseudonym key could not be used: KMS answered with an error.",
        ),
        (lambda: ValueError("no AWS error at all"), "The pseudonym key could not be used."),
    ],
    ids=[
        "read timeout",
        "connect timeout",
        "no time left",
        "throttled",
        "denied",
        "disabled",
        "pending deletion",
        "not found",
        "unreachable",
        "other AWS error",
        "not AWS",
    ],
)
def test_a_dependency_failure_says_what_happened(failure, message):
    cause = failure()
    error = errors.dependency_unavailable(errors.PSEUDONYM_KEY, cause)
    assert (error.status, error.code, error.message) == (503, "DEPENDENCY_UNAVAILABLE", message)
    try:
        raise error from cause
    except errors.DependencyUnavailableError as raised:
        logged = errors.failure_cause(raised)  # the log line of its 5xx
    assert logged["dependency"] == "kms:GenerateMac"
    if isinstance(cause, ClientError):
        assert logged["awsError"] == cause.response["Error"]["Code"]
    elif not isinstance(cause, ValueError):
        assert logged["awsError"] == type(cause).__name__


@pytest.mark.parametrize(
    ("dependency", "start"),
    [
        (errors.SECRET, "The gateway's secret could not be read: Secrets Manager"),
        (errors.AUDIT_TRAIL, "The audit trail could not be written: DynamoDB"),
        (errors.IDEMPOTENCY_STORE, "The idempotency store could not be used: DynamoDB"),
    ],
)
def test_each_dependency_says_what_it_could_not_do_and_finds_a_wrapped_aws_error(dependency, start):
    wrapper = RuntimeError("Powertools' wrapper")
    wrapper.__context__ = _aws_error("ProvisionedThroughputExceededException", "PutItem")
    error = errors.dependency_unavailable(dependency, wrapper)
    assert error.message == f"{start} is throttling the gateway's calls."
    assert error.dependency == dependency.name


@pytest.mark.parametrize(
    ("cause", "status"), [(errors.UpstreamError("Cut."), 502), (errors.UpstreamTimeoutError(), 504)]
)
def test_an_unknown_outcome_has_its_own_code_and_its_causes_status(cause, status):
    cause.upstream_status = 502
    unknown = errors.unknown_outcome(cause)
    assert (unknown.status, unknown.code, unknown.upstream_status) == (
        status,
        "OUTCOME_UNKNOWN",
        502,
    )
    assert unknown.message.startswith(cause.message + " The change may or may not")
    assert unknown.__cause__ is cause
    assert unknown.answer_headers() == {}
    replayed = errors.OutcomeUnknownError.replay(unknown.saved(), "c2")
    assert replayed.to_body("c2") == unknown.to_body("c2")
    assert (replayed.status, replayed.answer_headers()) == (
        status,
        {"Idempotent-Replayed": "true"},
    )
