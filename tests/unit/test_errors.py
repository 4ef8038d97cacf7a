from __future__ import annotations

import pytest

from offer_state import errors
from offer_state.client import Collector


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
