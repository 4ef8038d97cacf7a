"""CORS as API Gateway applies the HttpApi's CorsConfiguration (CorsAllowOrigins; locally
CORS_ALLOW_ORIGINS, default the demo page's origin)."""

from __future__ import annotations

import pytest

from tests.support.stack import RunningStack


def _allowed(stack: RunningStack) -> str:
    return f"http://127.0.0.1:{stack.ports['DEMO_PORT']}"


def _preflight(stack: RunningStack, origin: str, method: str = "PUT"):
    return stack.request(
        "OPTIONS",
        "/v1/offers/states",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
        },
    )


def test_preflight_from_the_allowed_origin(stack: RunningStack):
    answer = _preflight(stack, _allowed(stack))
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == _allowed(stack)
    assert set(answer.headers["Access-Control-Allow-Methods"].split(",")) == {"GET", "PUT"}
    allowed_headers = set(answer.headers["Access-Control-Allow-Headers"].split(","))
    assert allowed_headers == {
        "authorization",
        "content-type",
        "idempotency-key",
        "x-correlation-id",
        "x-local-time",
    }
    assert sum(stack.sandbox_control.calls().values()) == 0  # no function ran


@pytest.mark.parametrize("origin", ["http://evil.example", "http://localhost:3003", "null"])
def test_preflight_from_another_origin_gets_no_cors_headers(stack: RunningStack, origin: str):
    answer = _preflight(stack, origin)
    assert not [h for h in answer.headers if h.lower().startswith("access-control-")]


def test_answers_to_the_allowed_origin_expose_the_correlation_id(stack: RunningStack):
    answer = stack.request(
        "GET",
        "/v1/offers/states/count",
        stack.token("80000000110"),
        headers={"Origin": _allowed(stack)},
    )
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == _allowed(stack)
    exposed = set(answer.headers["Access-Control-Expose-Headers"].split(","))
    assert exposed == {"x-correlation-id", "idempotent-replayed"}


def test_gateway_errors_carry_cors_headers_too(stack: RunningStack):
    answer = stack.request("GET", "/v1/offers/states/count", headers={"Origin": _allowed(stack)})
    assert answer.status_code == 401  # readable by the page, not an opaque network error
    assert answer.headers["Access-Control-Allow-Origin"] == _allowed(stack)


def test_answers_to_another_origin_carry_no_cors_headers(stack: RunningStack):
    answer = stack.request(
        "GET",
        "/v1/offers/states/count",
        stack.token("80000000110"),
        headers={"Origin": "http://evil.example"},
    )
    assert not [h for h in answer.headers if h.lower().startswith("access-control-")]


def test_without_an_origin_nothing_changes(stack: RunningStack):
    answer = stack.request("GET", "/health")
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert stack.request("OPTIONS", "/v1/offers/states").status_code == 404
