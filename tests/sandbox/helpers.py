"""What the sandbox's tests share: its paths, seeded collectors, and calls made the way the
gateway's client makes them."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime

import jwt
import requests

from local.sandbox import AUDIENCE, CLIENT_ID, CLIENT_SECRET, TOKEN_PATH, Sandbox
from local.sandbox.seed import CATALOGUE, FRESH_OFFERS

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
FRESH = FRESH_OFFERS[0].offer_id


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


def m2m_token(sandbox_server: Sandbox, http: requests.Session) -> str:
    answer = http.post(sandbox_server.url + TOKEN_PATH, data=token_form(), timeout=5)
    answer.raise_for_status()
    return answer.json()["access_token"]


def m2m_headers(sandbox_server: Sandbox, http: requests.Session, collector: str = MAIN) -> dict:
    return {
        "Authorization": f"Bearer {m2m_token(sandbox_server, http)}",
        "Collector-Number": collector,
    }


def call(http, sandbox_server, endpoint, headers, params=None, body=None, **kwargs):
    """One Offer State call; PUT takes a JSON body (or raw bytes)."""
    url = sandbox_server.url + PATHS[endpoint]
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


def b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def verify_with_jwks(http, sandbox_server, token: str, audience: str) -> dict:
    jwks = http.get(sandbox_server.url + "/.well-known/jwks.json", timeout=5).json()
    (jwk,) = jwks["keys"]
    assert jwt.get_unverified_header(token)["kid"] == jwk["kid"]
    key = jwt.PyJWK(jwk).key
    return jwt.decode(
        token, key, algorithms=["RS256"], audience=audience, issuer=sandbox_server.issuer
    )


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
