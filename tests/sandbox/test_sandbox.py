"""The AIR MILES sandbox, driven over loopback HTTP the way the gateway's client drives it."""

from __future__ import annotations

import base64
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from local.sandbox import (
    AUDIENCE,
    CLIENT_ID,
    CLIENT_SECRET,
    COLLECTOR_CLAIM,
    MEMBER_AUDIENCE,
    TOKEN_PATH,
    Sandbox,
)
from local.sandbox.seed import CATALOGUE, FRESH_OFFERS, PARTNER_IDS, SEED_STATES

REPO = Path(__file__).resolve().parents[2]
HEALTH = "/offers/state-reader/health"
FIND = "/offers/state-reader/v1/find"
GET = "/offers/state-reader/v1/get"
COUNT = "/offers/state-reader/v1/count"
PUT = "/offers/state-writer/v1/put"
PUT_ALIAS = "/offers/state-reader/v1/put"
PATHS = {"health": HEALTH, "find": FIND, "get": GET, "count": COUNT, "put": PUT}
COLLECTOR_ENDPOINTS = ("find", "get", "count", "put")

MAIN = "80000000110"  # seed: 40 opted in + saved, 41 and 42 saved, 43 opted in
SECOND = "80000000001"
UNSAVED = "84095202006"  # seed: 60 opted in, 61 only SAVE:UNSAVED
NOBODY = "12345678901"
UPDATED_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
UNKNOWN_OFFER = "00000000-0000-4000-8000-000000000000"


def offer(index: int) -> str:
    return CATALOGUE[index].offer_id


def token_form(**overrides: str | None) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "audience": AUDIENCE,
        **overrides,
    }
    return {key: value for key, value in form.items() if value is not None}


def m2m_token(sandbox: Sandbox, http: requests.Session) -> str:
    answer = http.post(sandbox.url + TOKEN_PATH, data=token_form(), timeout=5)
    answer.raise_for_status()
    return answer.json()["access_token"]


def member_token(sandbox: Sandbox, http: requests.Session, number: str) -> str:
    answer = http.post(
        sandbox.url + "/_sandbox/member-token", json={"collectorNumber": number}, timeout=5
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


def m2m_headers(sandbox: Sandbox, http: requests.Session, collector: str = MAIN) -> dict:
    return {"Authorization": f"Bearer {m2m_token(sandbox, http)}", "Collector-Number": collector}


def call(http, sandbox, endpoint, headers, params=None, body=None, **kwargs):
    """One Offer State call; PUT takes a JSON body (or raw bytes)."""
    url = sandbox.url + PATHS[endpoint]
    if endpoint == "put":
        body = put_body(FRESH_OFFERS[0].offer_id) if body is None else body
        data = body if isinstance(body, bytes) else json.dumps(body)
        return http.put(url, headers=headers, data=data, timeout=5, **kwargs)
    if endpoint == "get" and params is None:
        params = {"offerId": offer(40)}
    return http.get(url, headers=headers, params=params, timeout=5, **kwargs)


def put_body(*offer_ids: str, name: str = "SAVE", value: str = "SAVED") -> dict:
    states = [{"name": name, "value": value}]
    return {"stateChanges": [{"offerId": offer_id, "states": states} for offer_id in offer_ids]}


def ids(answer: requests.Response) -> list[str]:
    return [entry["offerId"] for entry in answer.json()["offers"]]


def raw_states(http, sandbox, collector: str) -> dict:
    answer = http.get(f"{sandbox.url}/_sandbox/collectors/{collector}/states", timeout=5)
    answer.raise_for_status()
    return answer.json()


def add_fault(http, sandbox, **fault) -> dict:
    answer = http.post(sandbox.url + "/_sandbox/faults", json=fault, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()["fault"]


def calls(http, sandbox) -> dict:
    return http.get(sandbox.url + "/_sandbox/calls", timeout=5).json()


def b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def verify_with_jwks(http, sandbox, token: str, audience: str) -> dict:
    jwks = http.get(sandbox.url + "/.well-known/jwks.json", timeout=5).json()
    (jwk,) = jwks["keys"]
    assert jwt.get_unverified_header(token)["kid"] == jwk["kid"]
    key = jwt.PyJWK(jwk).key
    return jwt.decode(token, key, algorithms=["RS256"], audience=audience, issuer=sandbox.issuer)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


# -- token endpoint ------------------------------------------------------------------------


def test_client_credentials_grant_issues_rs256_m2m_token(sandbox, http):
    answer = http.post(sandbox.url + TOKEN_PATH, data=token_form(), timeout=5)

    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400
    assert answer.headers["Cache-Control"] == "no-store"
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "RS256"
    claims = verify_with_jwks(http, sandbox, body["access_token"], AUDIENCE)
    assert claims["iss"] == sandbox.issuer == sandbox.url + "/"
    assert claims["sub"] == "sandbox-client@clients"
    assert claims["azp"] == CLIENT_ID
    assert claims["gty"] == "client-credentials"
    assert claims["exp"] - claims["iat"] == 86400
    assert abs(claims["iat"] - time.time()) < 5


def test_token_endpoint_accepts_a_json_body(sandbox, http):
    answer = http.post(sandbox.url + TOKEN_PATH, json=token_form(), timeout=5)

    assert answer.status_code == 200
    verify_with_jwks(http, sandbox, answer.json()["access_token"], AUDIENCE)


@pytest.mark.parametrize(
    ("form", "status", "error", "description"),
    [
        (
            token_form(grant_type=None),
            400,
            "invalid_request",
            "Missing required parameter: grant_type",
        ),
        # grant_type is checked before the client.
        (token_form(grant_type=None, client_id="x"), 400, "invalid_request", None),
        (token_form(grant_type="password"), 403, "unauthorized_client", None),
        (token_form(client_id="someone-else"), 401, "access_denied", "Unauthorized"),
        (token_form(client_id=None), 401, "access_denied", "Unauthorized"),
        # The client is checked before the audience.
        (token_form(client_id="x", audience="https://x"), 401, "access_denied", "Unauthorized"),
        (
            token_form(client_secret="wrong-secret"),
            401,
            "invalid_client",
            "Client authentication failed",
        ),
        (
            token_form(audience="https://elsewhere"),
            403,
            "access_denied",
            "Service not enabled within domain: https://elsewhere",
        ),
        (
            token_form(audience=None),
            403,
            "access_denied",
            "Service not enabled within domain: ",
        ),
    ],
)
def test_token_endpoint_refuses_bad_requests_like_auth0(
    sandbox, http, form, status, error, description
):
    answer = http.post(sandbox.url + TOKEN_PATH, data=form, timeout=5)

    assert answer.status_code == status
    body = answer.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    if description is not None:
        assert body["error_description"] == description
    assert "wrong-secret" not in answer.text


def test_token_endpoint_answers_405_to_get(sandbox, http):
    assert http.get(sandbox.url + TOKEN_PATH, timeout=5).status_code == 405


def test_token_ttl_comes_from_argument_else_environment(monkeypatch):
    monkeypatch.setenv("SANDBOX_TOKEN_TTL", "77")
    with Sandbox(port=0) as from_env, Sandbox(port=0, token_ttl=60) as from_argument:
        for running, ttl in ((from_env, 77), (from_argument, 60)):
            answer = requests.post(running.url + TOKEN_PATH, data=token_form(), timeout=5)
            assert answer.json()["expires_in"] == ttl
            claims = jwt.decode(answer.json()["access_token"], options={"verify_signature": False})
            assert claims["exp"] - claims["iat"] == ttl


def test_jwks_publishes_the_signing_key(sandbox, http):
    jwks = http.get(sandbox.url + "/.well-known/jwks.json", timeout=5).json()

    (jwk,) = jwks["keys"]
    assert jwk["kty"] == "RSA"
    assert jwk["alg"] == "RS256"
    assert jwk["use"] == "sig"
    assert "d" not in jwk  # public half only
    verify_with_jwks(http, sandbox, m2m_token(sandbox, http), AUDIENCE)


# -- authentication ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def foreign_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def bad_authorization(kind: str, sandbox: Sandbox, http, foreign_key) -> dict:
    now = int(time.time())
    claims = {"iss": sandbox.issuer, "sub": "x@clients", "aud": AUDIENCE, "iat": now}
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
        token = sandbox.state.tokens.sign({**claims, "iat": now - 120, "exp": now - 60})
    elif kind == "tampered":
        header, _, signature = m2m_token(sandbox, http).split(".")
        token = f"{header}.{b64url({**claims, 'exp': now + 3600, 'sub': 'evil'})}.{signature}"
    elif kind == "wrong audience":
        token = sandbox.state.tokens.sign({**claims, "aud": "https://elsewhere", "exp": now + 60})
    elif kind == "wrong issuer":
        token = sandbox.state.tokens.sign({**claims, "iss": "https://elsewhere/", "exp": now + 60})
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
    sandbox, http, foreign_key, endpoint, kind
):
    headers = bad_authorization(kind, sandbox, http, foreign_key)

    answer = call(http, sandbox, endpoint, {**headers, "Collector-Number": MAIN})

    assert answer.status_code == 401
    assert answer.json()["responseCode"] == "UNAUTHORIZED"
    assert answer.json()["message"]
    assert answer.headers["X-Correlation-Id"]
    token = headers.get("Authorization", "").removeprefix("Bearer ")
    if len(token) > 10:
        assert token not in answer.text
    assert MAIN not in answer.text


@pytest.mark.parametrize("kind", ["m2m", "member"])
def test_health_answers_any_valid_token(sandbox, http, kind):
    token = m2m_token(sandbox, http) if kind == "m2m" else member_token(sandbox, http, MAIN)

    answer = http.get(sandbox.url + HEALTH, headers={"Authorization": f"Bearer {token}"})

    assert answer.status_code == 200
    (status,) = answer.json()
    assert status["healthy"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", status["timestamp"])
    assert abs(parse_time(status["timestamp"]).timestamp() - time.time()) < 5


# -- correlation ids -----------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", list(PATHS))
def test_correlation_id_is_echoed_on_success_and_error(sandbox, http, endpoint):
    correlation_id = "bcf529ae-0de0-4ded-90f5-e050ce2df0e3"
    good = {**m2m_headers(sandbox, http), "x-correlation-id": correlation_id}

    ok = call(http, sandbox, endpoint, good)
    refused = call(http, sandbox, endpoint, {"x-correlation-id": correlation_id})

    assert ok.status_code in (200, 204)
    assert ok.headers["X-Correlation-Id"] == correlation_id
    assert refused.status_code == 401
    assert refused.headers["X-Correlation-Id"] == correlation_id


def test_correlation_id_is_a_new_uuid4_when_absent(sandbox, http):
    headers = m2m_headers(sandbox, http)

    first = call(http, sandbox, "find", headers).headers["X-Correlation-Id"]
    second = call(http, sandbox, "find", headers).headers["X-Correlation-Id"]

    assert uuid.UUID(first).version == 4
    assert first != second


# -- collector rules -----------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", COLLECTOR_ENDPOINTS)
def test_member_token_with_collector_header_is_refused(sandbox, http, endpoint):
    token = member_token(sandbox, http, MAIN)

    answer = call(
        http, sandbox, endpoint, {"Authorization": f"Bearer {token}", "Collector-Number": MAIN}
    )

    assert answer.status_code == 400
    assert answer.json()["responseCode"] == "BAD_REQUEST"
    assert MAIN not in answer.text


@pytest.mark.parametrize("endpoint", COLLECTOR_ENDPOINTS)
def test_m2m_token_without_collector_header_is_refused(sandbox, http, endpoint):
    token = m2m_token(sandbox, http)

    answer = call(http, sandbox, endpoint, {"Authorization": f"Bearer {token}"})

    assert answer.status_code == 400
    assert answer.json()["responseCode"] == "BAD_REQUEST"


@pytest.mark.parametrize("endpoint", COLLECTOR_ENDPOINTS)
@pytest.mark.parametrize("number", ["8000000011", "800000001100", "8000000011a", "", "8000-000011"])
def test_collector_header_must_be_exactly_11_digits(sandbox, http, endpoint, number):
    answer = call(http, sandbox, endpoint, m2m_headers(sandbox, http, number))

    assert answer.status_code == 400
    assert answer.json()["responseCode"] == "BAD_REQUEST"
    if number:
        assert number not in answer.text


def test_member_token_reads_the_collector_in_its_claim(sandbox, http):
    token = member_token(sandbox, http, MAIN)

    as_member = call(http, sandbox, "find", {"Authorization": f"Bearer {token}"})
    as_partner = call(http, sandbox, "find", m2m_headers(sandbox, http, MAIN))

    assert as_member.status_code == 200
    assert as_member.json() == as_partner.json()
    assert {entry["collectorId"] for entry in as_member.json()["offers"]} == {MAIN}


def test_member_token_writes_the_collector_in_its_claim(sandbox, http):
    token = member_token(sandbox, http, SECOND)
    fresh = FRESH_OFFERS[5].offer_id

    answer = call(http, sandbox, "put", {"Authorization": f"Bearer {token}"}, body=put_body(fresh))

    assert answer.status_code == 204
    assert fresh in [entry["offerId"] for entry in raw_states(http, sandbox, SECOND)["offers"]]
    assert fresh not in [entry["offerId"] for entry in raw_states(http, sandbox, MAIN)["offers"]]


def test_any_11_digit_collector_is_valid_and_starts_without_state(sandbox, http):
    headers = m2m_headers(sandbox, http, NOBODY)

    found = call(http, sandbox, "find", headers)
    counted = call(http, sandbox, "count", headers)
    got = call(http, sandbox, "get", headers, {"offerId": offer(40)})

    assert found.json() == {"offers": [], "pageNumber": 0, "pageSize": 20, "totalCount": 0}
    assert counted.json() == {"count": 0}
    assert got.json() == {"offers": []}


# -- GET -----------------------------------------------------------------------------------


def test_get_returns_only_offers_with_state_in_the_order_asked(sandbox, http):
    asked = [offer(43), offer(0), offer(40), UNKNOWN_OFFER, offer(41)]

    answer = call(http, sandbox, "get", m2m_headers(sandbox, http), {"offerId": asked})

    assert answer.status_code == 200
    assert answer.json() == {
        "offers": [
            {
                "offerId": offer(43),
                "collectorId": MAIN,
                "states": [
                    {
                        "name": "OPT_IN",
                        "value": "OPTED_IN",
                        "updatedAt": "2026-01-09T17:05:12.999999Z",
                    }
                ],
            },
            {
                "offerId": offer(40),
                "collectorId": MAIN,
                "states": [
                    {
                        "name": "OPT_IN",
                        "value": "OPTED_IN",
                        "updatedAt": "2026-01-05T10:15:30.123456Z",
                    },
                    {"name": "SAVE", "value": "SAVED", "updatedAt": "2026-01-06T08:00:00.000001Z"},
                ],
            },
            {
                "offerId": offer(41),
                "collectorId": MAIN,
                "states": [
                    {"name": "SAVE", "value": "SAVED", "updatedAt": "2026-01-07T12:30:45.654321Z"}
                ],
            },
        ]
    }


def test_get_takes_repeated_comma_separated_any_case_ids_and_folds_duplicates(sandbox, http):
    query = f"offerId={offer(42).upper()},{offer(40)}&offerId={offer(42)}&offerId={offer(41)}"

    answer = http.get(f"{sandbox.url}{GET}?{query}", headers=m2m_headers(sandbox, http), timeout=5)

    assert answer.status_code == 200
    assert ids(answer) == [offer(42), offer(40), offer(41)]


def test_get_accepts_100_ids_and_refuses_101(sandbox, http):
    headers = m2m_headers(sandbox, http)
    hundred = [o.offer_id for o in CATALOGUE] + [str(uuid.UUID(int=n)) for n in range(1, 21)]

    ok = call(http, sandbox, "get", headers, {"offerId": hundred})
    folded = call(http, sandbox, "get", headers, {"offerId": [*hundred, hundred[0].upper()]})
    too_many = call(http, sandbox, "get", headers, {"offerId": [*hundred, str(uuid.uuid4())]})

    assert ok.status_code == 200
    assert ids(ok) == [offer(40), offer(41), offer(42), offer(43)]
    assert folded.status_code == 200
    assert too_many.status_code == 400
    assert too_many.json()["responseCode"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    "query",
    [
        "",
        "offerId=",
        "offerId=not-a-uuid",
        f"offerId={CATALOGUE[40].offer_id},,{CATALOGUE[41].offer_id}",
        f"offerId={CATALOGUE[40].offer_id.replace('-', '')}",
        f"offerId={{{CATALOGUE[40].offer_id}}}",
    ],
)
def test_get_refuses_missing_or_malformed_ids(sandbox, http, query):
    answer = http.get(f"{sandbox.url}{GET}?{query}", headers=m2m_headers(sandbox, http), timeout=5)

    assert answer.status_code == 400
    assert answer.json()["responseCode"] == "BAD_REQUEST"


def test_unsaved_only_offer_counts_as_having_no_state(sandbox, http):
    headers = m2m_headers(sandbox, http, UNSAVED)

    got = call(http, sandbox, "get", headers, {"offerId": [offer(60), offer(61)]})
    found = call(http, sandbox, "find", headers)
    unsaved = call(http, sandbox, "find", headers, {"state": "SAVE:UNSAVED"})
    counted = call(http, sandbox, "count", headers)

    assert ids(got) == [offer(60)]
    assert ids(found) == [offer(60)]
    assert found.json()["totalCount"] == 1
    assert ids(unsaved) == []
    assert counted.json() == {"count": 1}


def test_unsaving_an_opted_in_offer_keeps_it_with_both_states(sandbox, http):
    headers = m2m_headers(sandbox, http)
    assert call(http, sandbox, "put", headers, body=put_body(offer(40), value="UNSAVED")).ok

    got = call(http, sandbox, "get", headers, {"offerId": offer(40)})
    saved = call(http, sandbox, "find", headers, {"state": "SAVE:SAVED"})
    unsaved = call(http, sandbox, "find", headers, {"state": "SAVE:UNSAVED"})

    (entry,) = got.json()["offers"]
    assert [(s["name"], s["value"]) for s in entry["states"]] == [
        ("OPT_IN", "OPTED_IN"),
        ("SAVE", "UNSAVED"),
    ]
    assert offer(40) not in ids(saved)
    assert ids(unsaved) == [offer(40)]


def test_unsaving_an_offer_without_other_state_removes_it(sandbox, http):
    headers = m2m_headers(sandbox, http)
    assert call(http, sandbox, "put", headers, body=put_body(offer(41), value="UNSAVED")).ok

    assert call(http, sandbox, "get", headers, {"offerId": offer(41)}).json() == {"offers": []}
    assert call(http, sandbox, "count", headers).json() == {"count": 3}


# -- FIND ----------------------------------------------------------------------------------


def test_find_lists_saved_and_opted_in_offers_newest_first(sandbox, http):
    answer = call(http, sandbox, "find", m2m_headers(sandbox, http))

    assert answer.status_code == 200
    body = answer.json()
    # Newest first by each offer's latest state: 43 (9 Jan), 41 (7 Jan), 40 (6 Jan), 42 (3 Jan).
    assert ids(answer) == [offer(43), offer(41), offer(40), offer(42)]
    assert (body["pageNumber"], body["pageSize"], body["totalCount"]) == (0, 20, 4)
    for entry in body["offers"]:
        assert set(entry) == {"offerId", "collectorId", "states"}
        assert all(set(state) == {"name", "value", "updatedAt"} for state in entry["states"])
        assert all(UPDATED_AT.fullmatch(state["updatedAt"]) for state in entry["states"])


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "SAVE:SAVED"}, {40, 41, 42}),
        ({"state": "OPT_IN:OPTED_IN"}, {40, 43}),
        ({"state": ["SAVE:SAVED", "OPT_IN:OPTED_IN"]}, {40, 41, 42, 43}),
        ({"state": "OPT_IN:OPTED_IN,SAVE:SAVED"}, {40, 41, 42, 43}),
        ({"state": "SAVE:UNSAVED"}, set()),
    ],
)
def test_find_state_filters_combine_with_or(sandbox, http, params, expected):
    answer = call(http, sandbox, "find", m2m_headers(sandbox, http), params)

    assert answer.status_code == 200
    assert set(ids(answer)) == {offer(n) for n in expected}
    assert answer.json()["totalCount"] == len(expected)


@pytest.mark.parametrize(
    "state", ["SAVE", "SAVE:OPTED_IN", "OPT_IN:OPTED_OUT", "save:saved", "", "SAVE:SAVED,"]
)
@pytest.mark.parametrize("endpoint", ["find", "count"])
def test_find_and_count_refuse_bad_state_filters(sandbox, http, endpoint, state):
    answer = call(http, sandbox, endpoint, m2m_headers(sandbox, http), {"state": state})

    assert answer.status_code == 400
    assert answer.json()["responseCode"] == "BAD_REQUEST"


def test_find_filters_on_partner(sandbox, http):
    partner = CATALOGUE[41].partner_id
    expected = [n for n in (40, 41, 42, 43) if CATALOGUE[n].partner_id == partner]

    answer = call(http, sandbox, "find", m2m_headers(sandbox, http), {"partnerId": partner.upper()})

    assert expected == [41]
    assert ids(answer) == [offer(41)]


def test_find_filters_on_region(sandbox, http):
    headers = m2m_headers(sandbox, http)
    for region in ("ON", "BC", "YT"):
        expected = {offer(n) for n in (40, 41, 42, 43) if region in CATALOGUE[n].regions}

        answer = call(http, sandbox, "find", headers, {"region": region})

        assert set(ids(answer)) == expected
    # Offer 40 is national, so every region finds at least it.
    assert len(CATALOGUE[40].regions) == 13


@pytest.mark.parametrize(
    "params",
    [
        {"partnerId": "not-a-uuid"},
        {"partnerId": ""},
        {"partnerId": [PARTNER_IDS[0], PARTNER_IDS[1]]},
        {"region": "XX"},
        {"region": "on"},
        {"region": ""},
    ],
)
@pytest.mark.parametrize("endpoint", ["find", "count"])
def test_find_and_count_refuse_bad_partner_or_region(sandbox, http, endpoint, params):
    answer = call(http, sandbox, endpoint, m2m_headers(sandbox, http), params)

    assert answer.status_code == 400
    assert answer.json()["responseCode"] == "BAD_REQUEST"


SEEDED = (40, 41, 42, 43)


def _updated(n: int) -> datetime:
    return max(moment for _, moment in SEED_STATES[MAIN][offer(n)].values())


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"firstSortBy": "offerId"}, sorted(offer(n) for n in SEEDED)),
        (
            {"firstSortBy": "offerId", "firstSortByDescending": "true"},
            sorted((offer(n) for n in SEEDED), reverse=True),
        ),
        (
            {"firstSortBy": "updatedAt", "firstSortByDescending": "false"},
            [offer(n) for n in sorted(SEEDED, key=_updated)],
        ),
        (
            {"firstSortBy": "partnerId", "secondSortBy": "offerId"},
            [offer(n) for n in sorted(SEEDED, key=lambda n: (CATALOGUE[n].partner_id, offer(n)))],
        ),
        (
            {
                "firstSortBy": "partnerId",
                "firstSortByDescending": "TRUE",
                "secondSortBy": "updatedAt",
            },
            [
                offer(n)
                for n in sorted(SEEDED, key=lambda n: (CATALOGUE[n].partner_id, _updated(n)))
            ][::-1],
        ),
    ],
)
def test_find_sorts_on_two_keys(sandbox, http, params, expected):
    answer = call(http, sandbox, "find", m2m_headers(sandbox, http), params)

    assert answer.status_code == 200
    assert ids(answer) == expected


def test_find_second_sort_key_breaks_ties(sandbox, http):
    headers = m2m_headers(sandbox, http, NOBODY)
    batch = [o.offer_id for o in FRESH_OFFERS[:6]]
    assert call(http, sandbox, "put", headers, body=put_body(*batch)).status_code == 204

    answer = call(
        http,
        sandbox,
        "find",
        headers,
        {"firstSortBy": "updatedAt", "secondSortBy": "offerId", "secondSortByDescending": "true"},
    )

    # One batch, one timestamp: the second key decides the whole order.
    assert ids(answer) == sorted(batch, reverse=True)


@pytest.mark.parametrize(
    "params",
    [
        {"firstSortBy": "name"},
        {"secondSortBy": ""},
        {"firstSortByDescending": "yes"},
        {"secondSortByDescending": "1"},
    ],
)
def test_find_refuses_bad_sort_parameters(sandbox, http, params):
    answer = call(http, sandbox, "find", m2m_headers(sandbox, http), params)

    assert answer.status_code == 400
    assert answer.json()["responseCode"] == "BAD_REQUEST"


def test_find_pages_through_every_match(sandbox, http):
    headers = m2m_headers(sandbox, http, NOBODY)
    saved = [o.offer_id for o in FRESH_OFFERS[:25]]
    assert call(http, sandbox, "put", headers, body=put_body(*saved)).status_code == 204
    everything = call(http, sandbox, "find", headers, {"pageSize": 100})

    first = call(http, sandbox, "find", headers)
    second = call(http, sandbox, "find", headers, {"pageNumber": 1})
    pages = [
        call(http, sandbox, "find", headers, {"pageSize": 10, "pageNumber": n}) for n in range(3)
    ]
    beyond = call(http, sandbox, "find", headers, {"pageSize": 10, "pageNumber": 3})

    assert sorted(ids(everything)) == sorted(saved)
    assert len(ids(first)) == 20
    assert ids(first) + ids(second) == ids(everything)
    assert second.json()["pageNumber"] == 1
    assert [ids(page) for page in pages] == [
        ids(everything)[0:10],
        ids(everything)[10:20],
        ids(everything)[20:25],
    ]
    assert all(page.json()["totalCount"] == 25 for page in pages)
    assert beyond.json() == {"offers": [], "pageNumber": 3, "pageSize": 10, "totalCount": 25}


@pytest.mark.parametrize(
    "params",
    [
        {"pageNumber": "-1"},
        {"pageNumber": "x"},
        {"pageNumber": "1.5"},
        {"pageNumber": ""},
        {"pageSize": "0"},
        {"pageSize": "101"},
        {"pageSize": "ten"},
        {"pageSize": ["10", "20"]},
    ],
)
def test_find_refuses_bad_paging(sandbox, http, params):
    answer = call(http, sandbox, "find", m2m_headers(sandbox, http), params)

    assert answer.status_code == 400
    assert answer.json()["responseCode"] == "BAD_REQUEST"


def test_find_ignores_unknown_parameters(sandbox, http):
    headers = m2m_headers(sandbox, http)

    plain = call(http, sandbox, "find", headers)
    extra = call(http, sandbox, "find", headers, {"colour": "blue", "limit": "x"})

    assert extra.status_code == 200
    assert extra.json() == plain.json()


def test_find_totals_can_be_switched_off(sandbox, http):
    http.post(sandbox.url + "/_sandbox/config", json={"findTotals": False}).raise_for_status()

    answer = call(http, sandbox, "find", m2m_headers(sandbox, http))

    assert set(answer.json()) == {"offers"}
    assert len(answer.json()["offers"]) == 4


# -- COUNT ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, 4),
        ({"state": "SAVE:SAVED"}, 3),
        ({"state": "OPT_IN:OPTED_IN"}, 2),
        ({"state": ["SAVE:SAVED", "OPT_IN:OPTED_IN"]}, 4),
        ({"partnerId": CATALOGUE[41].partner_id}, 1),
        ({"region": "ON", "state": "SAVE:SAVED"}, None),
        # Sort and paging do not apply to COUNT, not even when they are malformed.
        ({"pageSize": "abc", "firstSortBy": "nonsense", "pageNumber": "-3"}, 4),
    ],
)
def test_count_applies_find_filters(sandbox, http, params, expected):
    headers = m2m_headers(sandbox, http)
    if expected is None:
        expected = len(ids(call(http, sandbox, "find", headers, params)))

    answer = call(http, sandbox, "count", headers, params)

    assert answer.status_code == 200
    assert answer.json() == {"count": expected}


# -- PUT -----------------------------------------------------------------------------------


def test_put_writes_states_stamped_now_with_microseconds(sandbox, http):
    headers = m2m_headers(sandbox, http)
    fresh = FRESH_OFFERS[3].offer_id
    body = {
        "stateChanges": [
            {
                "offerId": fresh.upper(),
                "states": [
                    {"name": "SAVE", "value": "SAVED"},
                    {"name": "OPT_IN", "value": "OPTED_IN"},
                ],
            }
        ]
    }
    before = time.time()

    answer = call(http, sandbox, "put", headers, body=body)

    assert answer.status_code == 204
    assert answer.content == b""
    (entry,) = call(http, sandbox, "get", headers, {"offerId": fresh}).json()["offers"]
    assert entry["offerId"] == fresh
    assert [(s["name"], s["value"]) for s in entry["states"]] == [
        ("OPT_IN", "OPTED_IN"),
        ("SAVE", "SAVED"),
    ]
    for state in entry["states"]:
        assert UPDATED_AT.fullmatch(state["updatedAt"])
        assert before - 1 <= parse_time(state["updatedAt"]).timestamp() <= time.time() + 1
    assert ids(call(http, sandbox, "find", headers))[0] == fresh  # newest first


def test_put_alias_path_writes_and_counts_as_put(sandbox, http):
    fresh = FRESH_OFFERS[7].offer_id

    answer = http.put(
        sandbox.url + PUT_ALIAS, headers=m2m_headers(sandbox, http), json=put_body(fresh)
    )

    assert answer.status_code == 204
    assert fresh in [e["offerId"] for e in raw_states(http, sandbox, MAIN)["offers"]]
    assert calls(http, sandbox)["put"] == 1


def test_put_of_an_unchanged_value_still_refreshes_updated_at(sandbox, http):
    headers = m2m_headers(sandbox, http)

    assert call(http, sandbox, "put", headers, body=put_body(offer(41))).status_code == 204

    (entry,) = call(http, sandbox, "get", headers, {"offerId": offer(41)}).json()["offers"]
    (state,) = entry["states"]
    assert state["value"] == "SAVED"
    assert state["updatedAt"] != "2026-01-07T12:30:45.654321Z"
    assert abs(parse_time(state["updatedAt"]).timestamp() - time.time()) < 5


FRESH = FRESH_OFFERS[0].offer_id


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"[]",
        b'"stateChanges"',
        json.dumps({}).encode(),
        json.dumps({"stateChanges": {}}).encode(),
        json.dumps({"stateChanges": []}).encode(),
        json.dumps(put_body(*[FRESH] * 101)).encode(),
        json.dumps({"stateChanges": [{"states": [{"name": "SAVE", "value": "SAVED"}]}]}).encode(),
        json.dumps(put_body("not-a-uuid")).encode(),
        json.dumps({"stateChanges": [{"offerId": FRESH}]}).encode(),
        json.dumps({"stateChanges": [{"offerId": FRESH, "states": []}]}).encode(),
        json.dumps({"stateChanges": [{"offerId": FRESH, "states": ["SAVE:SAVED"]}]}).encode(),
        json.dumps(put_body(FRESH, name="LIKE", value="SAVED")).encode(),
        json.dumps(put_body(FRESH, name="SAVE", value="OPTED_IN")).encode(),
        json.dumps(put_body(FRESH, name="OPT_IN", value="OPTED_OUT")).encode(),
        json.dumps(put_body(FRESH, name="SAVE", value="saved")).encode(),
        json.dumps({"stateChanges": [{"offerId": FRESH, "states": [{"name": "SAVE"}]}]}).encode(),
        json.dumps({"stateChanges": ["x"]}).encode(),
    ],
)
def test_put_refuses_malformed_bodies(sandbox, http, body):
    answer = call(http, sandbox, "put", m2m_headers(sandbox, http), body=body)

    assert answer.status_code == 400
    assert answer.json()["responseCode"] == "BAD_REQUEST"
    assert FRESH not in [e["offerId"] for e in raw_states(http, sandbox, MAIN)["offers"]]


def test_put_of_an_unknown_offer_is_record_not_found(sandbox, http):
    answer = call(http, sandbox, "put", m2m_headers(sandbox, http), body=put_body(UNKNOWN_OFFER))

    assert answer.status_code == 404
    assert answer.json()["responseCode"] == "RECORD_NOT_FOUND"


@pytest.mark.parametrize(
    ("second", "status"),
    [
        ({"offerId": UNKNOWN_OFFER, "states": [{"name": "SAVE", "value": "SAVED"}]}, 404),
        ({"offerId": FRESH_OFFERS[2].offer_id, "states": [{"name": "SAVE", "value": "X"}]}, 400),
    ],
)
def test_put_batch_with_one_bad_change_changes_nothing(sandbox, http, second, status):
    before = raw_states(http, sandbox, MAIN)
    first = {"offerId": FRESH_OFFERS[1].offer_id, "states": [{"name": "SAVE", "value": "SAVED"}]}
    unsave = {"offerId": offer(41), "states": [{"name": "SAVE", "value": "UNSAVED"}]}

    answer = call(
        http,
        sandbox,
        "put",
        m2m_headers(sandbox, http),
        body={"stateChanges": [first, unsave, second]},
    )

    assert answer.status_code == status
    assert raw_states(http, sandbox, MAIN) == before


def test_put_accepts_a_batch_of_100_changes(sandbox, http):
    headers = m2m_headers(sandbox, http, NOBODY)
    batch = [o.offer_id for o in CATALOGUE] + [o.offer_id for o in CATALOGUE[:20]]

    answer = call(http, sandbox, "put", headers, body=put_body(*batch))

    assert answer.status_code == 204
    assert call(http, sandbox, "count", headers).json() == {"count": 80}


def test_concurrent_puts_lose_no_update(sandbox, http):
    token = m2m_token(sandbox, http)
    collector = "70000000008"
    groups = [[o.offer_id for o in CATALOGUE[n * 10 : n * 10 + 10]] for n in range(8)]
    statuses: list[int] = []
    barrier = threading.Barrier(len(groups))

    def writer(offer_ids: list[str]) -> None:
        headers = {"Authorization": f"Bearer {token}", "Collector-Number": collector}
        with requests.Session() as session:
            barrier.wait(timeout=5)
            for offer_id in offer_ids:
                answer = session.put(
                    sandbox.url + PUT, headers=headers, json=put_body(offer_id), timeout=5
                )
                statuses.append(answer.status_code)

    threads = [threading.Thread(target=writer, args=(group,)) for group in groups]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert statuses == [204] * 80
    stored = [entry["offerId"] for entry in raw_states(http, sandbox, collector)["offers"]]
    assert stored == [o.offer_id for o in CATALOGUE]
    assert calls(http, sandbox)["put"] == 80


def test_put_can_answer_200_with_an_empty_object(sandbox, http):
    http.post(sandbox.url + "/_sandbox/config", json={"putStatus": 200}).raise_for_status()

    answer = call(http, sandbox, "put", m2m_headers(sandbox, http))

    assert answer.status_code == 200
    assert answer.json() == {}


# -- routing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/offers/state-reader/v1/search", "/", "/offers/state-reader/v1/find/", "/_sandbox/x"]
)
def test_unknown_paths_are_404_not_found(sandbox, http, path):
    answer = http.get(sandbox.url + path, headers=m2m_headers(sandbox, http), timeout=5)

    assert answer.status_code == 404
    assert answer.json()["responseCode"] == "NOT_FOUND"
    assert answer.json()["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", FIND), ("PUT", GET), ("DELETE", HEALTH), ("GET", PUT), ("POST", "/_sandbox/calls")],
)
def test_wrong_method_on_a_known_path_is_405(sandbox, http, method, path):
    answer = http.request(method, sandbox.url + path, headers=m2m_headers(sandbox, http))

    assert answer.status_code == 405
    assert answer.json()["responseCode"] == "ERROR"
    assert answer.json()["message"]
    assert answer.headers["Allow"]
    assert sum(calls(http, sandbox).values()) == 1  # the token call only


def test_keep_alive_serves_many_calls_on_one_connection(sandbox, http):
    headers = m2m_headers(sandbox, http)
    with requests.Session() as session:
        answers = [call(session, sandbox, "count", headers) for _ in range(20)]
        # 204 carries no body and no Content-Length; the connection must still be reusable.
        answers += [call(session, sandbox, "put", headers) for _ in range(3)]
        answers += [call(session, sandbox, "count", headers) for _ in range(3)]

    assert [a.status_code for a in answers] == [200] * 20 + [204] * 3 + [200] * 3


# -- control API ---------------------------------------------------------------------------


def test_control_lists_the_catalogue_in_order(sandbox, http):
    offer_ids = http.get(sandbox.url + "/_sandbox/offers", timeout=5).json()["offerIds"]

    assert offer_ids == [o.offer_id for o in CATALOGUE]
    assert 50 <= len(offer_ids) <= 100
    assert len(set(offer_ids)) == len(offer_ids)
    assert all(str(uuid.UUID(offer_id)) == offer_id for offer_id in offer_ids)


def test_seed_is_the_same_in_every_sandbox():
    # uuid5 ids: a second process (or a restart) sees the same catalogue and partners.
    assert CATALOGUE[0].offer_id == str(
        uuid.uuid5(uuid.UUID("6f1d2c3b-8a4e-5f60-9b7c-0d1e2f3a4b5c"), "offer:000")
    )
    assert len(set(PARTNER_IDS)) == 4
    assert {o.partner_id for o in CATALOGUE} == set(PARTNER_IDS)
    seeded = {offer_id for states in SEED_STATES.values() for offer_id in states}
    assert not seeded & {o.offer_id for o in FRESH_OFFERS}


def test_control_shows_raw_collector_states_including_unsaved_only(sandbox, http):
    body = raw_states(http, sandbox, UNSAVED)

    assert body == {
        "collectorNumber": UNSAVED,
        "offers": [
            {
                "offerId": offer(60),
                "collectorId": UNSAVED,
                "states": [
                    {
                        "name": "OPT_IN",
                        "value": "OPTED_IN",
                        "updatedAt": "2026-03-10T14:20:00.424242Z",
                    }
                ],
            },
            {
                "offerId": offer(61),
                "collectorId": UNSAVED,
                "states": [
                    {"name": "SAVE", "value": "UNSAVED", "updatedAt": "2026-03-11T14:20:00.434343Z"}
                ],
            },
        ],
    }
    assert [e["offerId"] for e in raw_states(http, sandbox, SECOND)["offers"]] == [
        offer(50),
        offer(51),
        offer(52),
    ]
    assert raw_states(http, sandbox, NOBODY)["offers"] == []


@pytest.mark.parametrize("number", ["123", "8000000011x", "800000001100"])
def test_control_collector_states_refuses_bad_numbers(sandbox, http, number):
    answer = http.get(f"{sandbox.url}/_sandbox/collectors/{number}/states", timeout=5)

    assert answer.status_code == 400
    assert answer.json()["error"]


def test_control_mints_member_tokens(sandbox, http):
    token = member_token(sandbox, http, MAIN)

    claims = verify_with_jwks(http, sandbox, token, MEMBER_AUDIENCE)
    assert claims[COLLECTOR_CLAIM] == MAIN
    assert claims["sub"] == "auth0|member-0110"
    assert claims["iss"] == sandbox.issuer
    assert claims["exp"] - claims["iat"] == 86400


@pytest.mark.parametrize(
    "body", [{}, {"collectorNumber": 80000000110}, {"collectorNumber": "8000000011"}, []]
)
def test_control_member_token_refuses_bad_numbers(sandbox, http, body):
    answer = http.post(sandbox.url + "/_sandbox/member-token", json=body, timeout=5)

    assert answer.status_code == 400


def test_control_config_changes_token_lifetime_and_answers_whole_config(sandbox, http):
    answer = http.post(sandbox.url + "/_sandbox/config", json={"tokenTtl": 5}, timeout=5)

    assert answer.json() == {"tokenTtl": 5, "putStatus": 204, "findTotals": True}
    assert http.get(sandbox.url + "/_sandbox/config").json()["tokenTtl"] == 5
    issued = http.post(sandbox.url + TOKEN_PATH, data=token_form()).json()
    assert issued["expires_in"] == 5
    m2m = jwt.decode(issued["access_token"], options={"verify_signature": False})
    member = jwt.decode(member_token(sandbox, http, MAIN), options={"verify_signature": False})
    assert m2m["exp"] - m2m["iat"] == 5
    assert member["exp"] - member["iat"] == 5


def test_token_ttl_zero_issues_tokens_that_are_already_expired(sandbox, http):
    http.post(sandbox.url + "/_sandbox/config", json={"tokenTtl": 0}).raise_for_status()

    answer = call(http, sandbox, "find", m2m_headers(sandbox, http))

    assert answer.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"tokenTTL": 5},
        {"tokenTtl": -1},
        {"tokenTtl": "5"},
        {"tokenTtl": True},
        {"putStatus": 201},
        {"findTotals": "false"},
        [],
    ],
)
def test_control_config_refuses_unknown_keys_and_bad_values(sandbox, http, body):
    answer = http.post(sandbox.url + "/_sandbox/config", json=body, timeout=5)

    assert answer.status_code == 400
    assert http.get(sandbox.url + "/_sandbox/config").json() == {
        "tokenTtl": 86400,
        "putStatus": 204,
        "findTotals": True,
    }


def test_reset_restores_seed_and_defaults_and_keeps_the_signing_key(sandbox, http):
    headers = m2m_headers(sandbox, http)
    seeded = raw_states(http, sandbox, MAIN)
    call(http, sandbox, "put", headers, body=put_body(offer(40), offer(1), value="UNSAVED"))
    http.post(sandbox.url + "/_sandbox/config", json={"tokenTtl": 5, "putStatus": 200})
    add_fault(http, sandbox, endpoint="count", mode="status", status=500)
    assert raw_states(http, sandbox, MAIN) != seeded

    answer = http.post(sandbox.url + "/_sandbox/reset", timeout=5)

    assert answer.json() == {"status": "reset"}
    assert raw_states(http, sandbox, MAIN) == seeded
    assert http.get(sandbox.url + "/_sandbox/config").json()["tokenTtl"] == 86400
    assert http.get(sandbox.url + "/_sandbox/faults").json() == {"faults": []}
    assert calls(http, sandbox) == dict.fromkeys(
        ["token", "health", "find", "get", "count", "put"], 0
    )
    assert http.get(sandbox.url + "/_sandbox/requests").json() == {"requests": []}
    # A token issued before the reset still verifies: the key survived.
    assert call(http, sandbox, "count", headers).json() == {"count": 4}


def test_calls_count_every_call_rejected_and_faulted_ones_too(sandbox, http):
    headers = m2m_headers(sandbox, http)  # token: 1
    call(http, sandbox, "health", headers)
    call(http, sandbox, "health", {})  # rejected: 401
    call(http, sandbox, "find", headers)
    call(http, sandbox, "get", headers, {"offerId": "bad"})  # rejected: 400
    add_fault(http, sandbox, endpoint="count", mode="status", status=503)
    call(http, sandbox, "count", headers)  # faulted
    call(http, sandbox, "put", headers)
    http.post(sandbox.url + TOKEN_PATH, data=token_form(client_secret="nope"))  # rejected

    assert calls(http, sandbox) == {
        "token": 2,
        "health": 2,
        "find": 1,
        "get": 1,
        "count": 1,
        "put": 1,
    }


def test_request_log_records_calls_without_secrets(sandbox, http):
    token = m2m_token(sandbox, http)
    member = member_token(sandbox, http, SECOND)
    call(
        http,
        sandbox,
        "find",
        {"Authorization": f"Bearer {token}", "Collector-Number": MAIN, "x-origin-client": "t:p:w"},
        {"state": ["SAVE:SAVED", "OPT_IN:OPTED_IN"], "pageSize": "5"},
    )
    call(http, sandbox, "count", {"Authorization": f"Bearer {member}"})
    call(http, sandbox, "health", {"Authorization": "Bearer junk"})
    call(http, sandbox, "put", {"Authorization": f"Bearer {token}", "Collector-Number": MAIN})

    answer = http.get(sandbox.url + "/_sandbox/requests", timeout=5)

    log = answer.json()["requests"]
    assert [(r["endpoint"], r["status"], r["tokenKind"]) for r in log] == [
        ("token", 200, "none"),
        ("find", 200, "m2m"),
        ("count", 200, "member"),
        ("health", 401, "none"),
        ("put", 204, "m2m"),
    ]
    find = log[1]
    assert find["method"] == "GET"
    assert find["path"] == FIND
    assert find["query"] == {"state": ["SAVE:SAVED", "OPT_IN:OPTED_IN"], "pageSize": ["5"]}
    assert find["headers"]["collector-number"] == MAIN
    assert find["headers"]["x-origin-client"] == "t:p:w"
    assert find["headers"]["authorization"] == "Bearer <redacted>"
    assert log[4]["body"] == put_body(FRESH_OFFERS[0].offer_id)
    assert token not in answer.text
    assert member not in answer.text
    assert "junk" not in answer.text
    assert CLIENT_SECRET not in answer.text


def test_request_log_keeps_the_last_500_calls(sandbox, http):
    with requests.Session() as session:
        for n in range(503):
            session.get(sandbox.url + HEALTH, params={"n": str(n)}, timeout=5)

    log = http.get(sandbox.url + "/_sandbox/requests", timeout=5).json()["requests"]

    assert len(log) == 500
    assert log[0]["query"] == {"n": ["3"]}
    assert log[-1]["query"] == {"n": ["502"]}
    assert calls(http, sandbox)["health"] == 503


def test_faults_are_registered_listed_and_cleared(sandbox, http):
    stored = add_fault(http, sandbox, endpoint="find", mode="status", status=503, count=2)
    add_fault(http, sandbox, endpoint="*", mode="delay", delayMs=0)

    listed = http.get(sandbox.url + "/_sandbox/faults", timeout=5).json()["faults"]
    cleared = http.delete(sandbox.url + "/_sandbox/faults", timeout=5)

    assert stored["endpoint"] == "find"
    assert stored["mode"] == "status"
    assert stored["status"] == 503
    assert stored["count"] == 2
    assert stored["retryAfter"] == 1
    assert [(f["endpoint"], f["mode"]) for f in listed] == [("find", "status"), ("*", "delay")]
    assert cleared.json() == {"status": "cleared"}
    assert http.get(sandbox.url + "/_sandbox/faults", timeout=5).json() == {"faults": []}


@pytest.mark.parametrize(
    "fault",
    [
        {"endpoint": "search", "mode": "status", "status": 503},
        {"endpoint": "find", "mode": "explode"},
        {"mode": "timeout"},
        {"endpoint": "find", "mode": "status"},
        {"endpoint": "find", "mode": "status", "status": "503"},
        {"endpoint": "find", "mode": "status", "status": 99},
        {"endpoint": "find", "mode": "status", "status": 600},
        {"endpoint": "find", "mode": "delay"},
        {"endpoint": "find", "mode": "delay", "delayMs": -1},
        {"endpoint": "find", "mode": "timeout", "count": 0},
        {"endpoint": "find", "mode": "timeout", "count": 1.5},
        {"endpoint": "find", "mode": "timeout", "colour": "red"},
        [],
    ],
)
def test_fault_registration_refuses_bad_specs(sandbox, http, fault):
    answer = http.post(sandbox.url + "/_sandbox/faults", json=fault, timeout=5)

    assert answer.status_code == 400
    assert answer.json()["error"]
    assert http.get(sandbox.url + "/_sandbox/faults", timeout=5).json() == {"faults": []}


# -- faults in action ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "retry_after"),
    [
        (503, "SERVICE_UNAVAILABLE", "1"),
        (429, "TOO_MANY_REQUESTS", "1"),
        (502, "BAD_GATEWAY", None),
    ],
)
def test_status_fault_answers_before_auth_with_air_miles_error(
    sandbox, http, status, code, retry_after
):
    add_fault(http, sandbox, endpoint="find", mode="status", status=status)

    answer = call(http, sandbox, "find", {"x-correlation-id": "c-1"})  # no token at all

    assert answer.status_code == status
    assert answer.json() == {"responseCode": code, "message": answer.json()["message"]}
    assert answer.json()["message"]
    assert answer.headers.get("Retry-After") == retry_after
    assert answer.headers["X-Correlation-Id"] == "c-1"


def test_status_fault_carries_the_configured_retry_after(sandbox, http):
    add_fault(http, sandbox, endpoint="put", mode="status", status=429, retryAfter=7)

    answer = call(http, sandbox, "put", m2m_headers(sandbox, http))

    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "7"
    assert FRESH not in [e["offerId"] for e in raw_states(http, sandbox, MAIN)["offers"]]


def test_status_fault_on_token_endpoint_uses_auth0_shape(sandbox, http):
    add_fault(http, sandbox, endpoint="token", mode="status", status=503)

    answer = http.post(sandbox.url + TOKEN_PATH, data=token_form(), timeout=5)

    assert answer.status_code == 503
    assert set(answer.json()) == {"error", "error_description"}
    assert answer.json()["error"] == "temporarily_unavailable"
    assert answer.headers["Retry-After"] == "1"


def test_fault_with_count_misbehaves_that_many_times(sandbox, http):
    headers = m2m_headers(sandbox, http)
    add_fault(http, sandbox, endpoint="count", mode="status", status=500, count=2)

    statuses = [call(http, sandbox, "count", headers).status_code for _ in range(3)]

    assert statuses == [500, 500, 200]
    (listed,) = http.get(sandbox.url + "/_sandbox/faults").json()["faults"]
    assert listed["remaining"] == 0


def test_endpoint_fault_beats_wildcard_and_first_registered_applies(sandbox, http):
    headers = m2m_headers(sandbox, http)
    add_fault(http, sandbox, endpoint="*", mode="status", status=502)
    add_fault(http, sandbox, endpoint="get", mode="status", status=504, count=1)
    add_fault(http, sandbox, endpoint="get", mode="status", status=500, count=1)

    statuses = [call(http, sandbox, "get", headers).status_code for _ in range(3)]
    others = [call(http, sandbox, name, headers).status_code for name in ("health", "find")]

    assert statuses == [504, 500, 502]
    assert others == [502, 502]


def test_delay_fault_answers_normally_after_the_delay(sandbox, http):
    headers = m2m_headers(sandbox, http)
    add_fault(http, sandbox, endpoint="count", mode="delay", delayMs=300, count=1)

    started = time.perf_counter()
    slow = call(http, sandbox, "count", headers)
    slow_seconds = time.perf_counter() - started
    started = time.perf_counter()
    fast = call(http, sandbox, "count", headers)
    fast_seconds = time.perf_counter() - started

    assert slow.json() == fast.json() == {"count": 4}
    assert slow_seconds >= 0.3
    assert fast_seconds < 0.3


def test_timeout_fault_holds_the_connection_until_faults_are_cleared(sandbox, http):
    headers = m2m_headers(sandbox, http)
    add_fault(http, sandbox, endpoint="find", mode="timeout")

    with pytest.raises(requests.ReadTimeout), requests.Session() as session:
        session.get(sandbox.url + FIND, headers=headers, timeout=(2, 0.5))
    cleared = http.delete(sandbox.url + "/_sandbox/faults", timeout=5)
    after = call(http, sandbox, "find", headers)

    assert cleared.status_code == 200
    assert after.status_code == 200
    assert calls(http, sandbox)["find"] == 2


def test_timeout_fault_closes_the_connection_without_an_answer_when_released(sandbox, http):
    headers = m2m_headers(sandbox, http)
    add_fault(http, sandbox, endpoint="get", mode="timeout", count=1)
    outcome: list[BaseException] = []

    def held_call() -> None:
        try:
            requests.get(sandbox.url + GET, headers=headers, params={"offerId": FRESH}, timeout=5)
        except requests.RequestException as error:
            outcome.append(error)

    thread = threading.Thread(target=held_call)
    thread.start()
    time.sleep(0.3)
    assert thread.is_alive()  # still held
    http.delete(sandbox.url + "/_sandbox/faults", timeout=5)
    thread.join(timeout=5)

    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], requests.ConnectionError)


def test_stopping_the_sandbox_releases_held_connections():
    with Sandbox(port=0) as other:
        requests.post(
            other.url + "/_sandbox/faults", json={"endpoint": "*", "mode": "timeout"}, timeout=5
        ).raise_for_status()
        errors: list[BaseException] = []

        def held_call() -> None:
            try:
                requests.get(other.url + HEALTH, timeout=10)
            except requests.RequestException as error:
                errors.append(error)

        url = other.url
        thread = threading.Thread(target=held_call)
        thread.start()
        time.sleep(0.3)
        started = time.perf_counter()
        other.stop()
        stop_seconds = time.perf_counter() - started
        thread.join(timeout=5)

    assert stop_seconds < 2
    assert len(errors) == 1
    assert isinstance(errors[0], requests.ConnectionError)
    with pytest.raises(requests.ConnectionError):  # the port is closed
        requests.get(url + HEALTH, timeout=2)


def test_malformed_fault_answers_200_with_a_body_that_is_not_json(sandbox, http):
    add_fault(http, sandbox, endpoint="get", mode="malformed")

    answer = call(http, sandbox, "get", m2m_headers(sandbox, http))

    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.content
    with pytest.raises(ValueError, match=r".+"):
        json.loads(answer.content)


def test_reset_fault_drops_the_connection(sandbox, http):
    headers = m2m_headers(sandbox, http)
    add_fault(http, sandbox, endpoint="put", mode="reset", count=1)

    with pytest.raises(requests.ConnectionError), requests.Session() as session:
        session.put(sandbox.url + PUT, headers=headers, json=put_body(FRESH), timeout=5)
    after = call(http, sandbox, "put", headers)

    assert after.status_code == 204
    assert calls(http, sandbox)["put"] == 2
    statuses = [
        r["status"] for r in http.get(sandbox.url + "/_sandbox/requests").json()["requests"]
    ]
    assert statuses[-2:] == [None, 204]


# -- command line --------------------------------------------------------------------------


def _read_line(stream, seconds: float) -> str:
    ready, _, _ = select.select([stream], [], [], seconds)
    assert ready, "no output from the sandbox"
    return stream.readline()


@pytest.mark.parametrize(
    ("signum", "port_argument"),
    [(signal.SIGTERM, ["--port", "0"]), (signal.SIGINT, [])],  # [] takes SANDBOX_PORT
)
def test_cli_prints_ready_logs_requests_and_stops_on_signal(signum, port_argument):
    env = {**os.environ, "SANDBOX_PORT": "0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "local.sandbox", "--host", "127.0.0.1", *port_argument],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _read_line(process.stdout, 15)
        assert "ready" in line
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        token = requests.post(url + TOKEN_PATH, data=token_form(), timeout=5).json()
        answer = requests.get(
            url + HEALTH, headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=5
        )
        assert answer.status_code == 200

        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
        stderr = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()

    assert re.search(r"POST /oauth/token 200 [\d.]+ms", stderr)
    assert re.search(r"GET /offers/state-reader/health 200 [\d.]+ms", stderr)
    assert token["access_token"] not in stderr
    assert "Bearer" not in stderr
