"""The Offer State API's gate: bearer tokens, correlation ids, and which collector a call is
about (the member token's claim, or the Collector-Number header with a machine token)."""

from __future__ import annotations

import base64
import re
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from local.sandbox import AUDIENCE, Sandbox
from local.sandbox.seed import FRESH_OFFERS
from tests.sandbox.helpers import (
    COLLECTOR_ENDPOINTS,
    HEALTH,
    MAIN,
    NOBODY,
    PATHS,
    SECOND,
    b64url,
    call,
    m2m_headers,
    m2m_token,
    offer,
    parse_time,
    put_body,
)

# -- authentication ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def foreign_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def bad_authorization(kind: str, sandbox_server: Sandbox, http, foreign_key) -> dict:
    now = int(time.time())
    claims = {"iss": sandbox_server.issuer, "sub": "x@clients", "aud": AUDIENCE, "iat": now}
    if kind == "missing":
        return {}
    if kind == "malformed":
        return {"Authorization": "Bearer not-a-jwt"}
    if kind == "empty":
        return {"Authorization": "Bearer "}
    if kind == "basic scheme":
        return {"Authorization": "Basic " + base64.b64encode(b"a:b").decode()}
    if kind == "alg none":
        token = f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{b64url({**claims, 'exp': now + 60})}."
    elif kind == "forged":
        token = jwt.encode({**claims, "exp": now + 60}, foreign_key, algorithm="RS256")
    elif kind == "expired":
        token = sandbox_server.state.tokens.sign({**claims, "iat": now - 120, "exp": now - 60})
    elif kind == "tampered":
        header, _, signature = m2m_token(sandbox_server, http).split(".")
        token = f"{header}.{b64url({**claims, 'exp': now + 3600, 'sub': 'evil'})}.{signature}"
    elif kind == "wrong audience":
        token = sandbox_server.state.tokens.sign(
            {**claims, "aud": "https://elsewhere", "exp": now + 60}
        )
    elif kind == "wrong issuer":
        token = sandbox_server.state.tokens.sign(
            {**claims, "iss": "https://elsewhere/", "exp": now + 60}
        )
    else:
        raise AssertionError(kind)
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("endpoint", list(PATHS))
@pytest.mark.parametrize(
    "kind",
    [
        "missing",
        "malformed",
        "empty",
        "basic scheme",
        "alg none",
        "forged",
        "expired",
        "tampered",
        "wrong audience",
        "wrong issuer",
    ],
)
def test_offer_endpoints_refuse_missing_or_invalid_tokens(
    sandbox_server, http, foreign_key, endpoint, kind
):
    headers = bad_authorization(kind, sandbox_server, http, foreign_key)

    answer = call(http, sandbox_server, endpoint, {**headers, "Collector-Number": MAIN})

    assert answer.status_code == 401
    assert answer.json()["responseCode"] == "UNAUTHORIZED"
    assert answer.json()["message"]
    assert answer.headers["X-Correlation-Id"]
    token = headers.get("Authorization", "").removeprefix("Bearer ")
    if len(token) > 10:
        assert token not in answer.text
    assert MAIN not in answer.text


@pytest.mark.parametrize("kind", ["m2m", "member"])
def test_health_answers_any_valid_token(sandbox_server, http, sandbox_control, kind):
    token = m2m_token(sandbox_server, http) if kind == "m2m" else sandbox_control.member_token(MAIN)

    answer = http.get(sandbox_server.url + HEALTH, headers={"Authorization": f"Bearer {token}"})

    assert answer.status_code == 200
    (status,) = answer.json()
    assert status["healthy"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", status["timestamp"])
    assert abs(parse_time(status["timestamp"]).timestamp() - time.time()) < 5


# -- correlation ids -----------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", list(PATHS))
def test_correlation_id_is_echoed_on_success_and_error(sandbox_server, http, endpoint):
    correlation_id = "bcf529ae-0de0-4ded-90f5-e050ce2df0e3"
    good = {**m2m_headers(sandbox_server, http), "x-correlation-id": correlation_id}

    ok = call(http, sandbox_server, endpoint, good)
    refused = call(http, sandbox_server, endpoint, {"x-correlation-id": correlation_id})

    assert ok.status_code in (200, 204)
    assert ok.headers["X-Correlation-Id"] == correlation_id
    assert refused.status_code == 401
    assert refused.headers["X-Correlation-Id"] == correlation_id


def test_correlation_id_is_a_new_uuid4_when_absent(sandbox_server, http):
    headers = m2m_headers(sandbox_server, http)

    first = call(http, sandbox_server, "find", headers).headers["X-Correlation-Id"]
    second = call(http, sandbox_server, "find", headers).headers["X-Correlation-Id"]

    assert uuid.UUID(first).version == 4
    assert first != second


# -- collector rules -----------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", COLLECTOR_ENDPOINTS)
def test_member_token_with_collector_header_is_refused(
    sandbox_server, http, sandbox_control, endpoint
):
    token = sandbox_control.member_token(MAIN)

    answer = call(
        http,
        sandbox_server,
        endpoint,
        {"Authorization": f"Bearer {token}", "Collector-Number": MAIN},
    )

    assert answer.status_code == 400
    assert answer.json()["responseCode"] == "BAD_REQUEST"
    assert MAIN not in answer.text


@pytest.mark.parametrize("endpoint", COLLECTOR_ENDPOINTS)
def test_m2m_token_without_collector_header_is_refused(sandbox_server, http, endpoint):
    token = m2m_token(sandbox_server, http)

    answer = call(http, sandbox_server, endpoint, {"Authorization": f"Bearer {token}"})

    assert answer.status_code == 400
    assert answer.json()["responseCode"] == "BAD_REQUEST"


@pytest.mark.parametrize("endpoint", COLLECTOR_ENDPOINTS)
@pytest.mark.parametrize("number", ["8000000011", "800000001100", "8000000011a", "", "8000-000011"])
def test_collector_header_must_be_exactly_11_digits(sandbox_server, http, endpoint, number):
    answer = call(http, sandbox_server, endpoint, m2m_headers(sandbox_server, http, number))

    assert answer.status_code == 400
    assert answer.json()["responseCode"] == "BAD_REQUEST"
    if number:
        assert number not in answer.text


def test_member_token_reads_the_collector_in_its_claim(sandbox_server, http, sandbox_control):
    token = sandbox_control.member_token(MAIN)

    as_member = call(http, sandbox_server, "find", {"Authorization": f"Bearer {token}"})
    as_partner = call(http, sandbox_server, "find", m2m_headers(sandbox_server, http, MAIN))

    assert as_member.status_code == 200
    assert as_member.json() == as_partner.json()
    assert {entry["collectorId"] for entry in as_member.json()["offers"]} == {MAIN}


def test_member_token_writes_the_collector_in_its_claim(sandbox_server, http, sandbox_control):
    token = sandbox_control.member_token(SECOND)
    fresh = FRESH_OFFERS[5].offer_id

    answer = call(
        http, sandbox_server, "put", {"Authorization": f"Bearer {token}"}, body=put_body(fresh)
    )

    assert answer.status_code == 204
    assert fresh in sandbox_control.states(SECOND)
    assert fresh not in sandbox_control.states(MAIN)


def test_any_11_digit_collector_is_valid_and_starts_without_state(sandbox_server, http):
    headers = m2m_headers(sandbox_server, http, NOBODY)

    found = call(http, sandbox_server, "find", headers)
    counted = call(http, sandbox_server, "count", headers)
    got = call(http, sandbox_server, "get", headers, {"offerId": offer(40)})

    assert found.json() == {"offers": [], "pageNumber": 0, "pageSize": 20, "totalCount": 0}
    assert counted.json() == {"count": 0}
    assert got.json() == {"offers": []}
