"""The Auth0 token endpoint (client credentials) and the JWKS of the sandbox's signing key."""

from __future__ import annotations

import time

import jwt
import pytest
import requests

from local.sandbox import AUDIENCE, CLIENT_ID, TOKEN_PATH, Sandbox
from tests.sandbox.helpers import m2m_token, token_form, verify_with_jwks


def test_client_credentials_grant_issues_rs256_m2m_token(sandbox_server, http):
    answer = http.post(sandbox_server.url + TOKEN_PATH, data=token_form(), timeout=5)

    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400
    assert answer.headers["Cache-Control"] == "no-store"
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "RS256"
    claims = verify_with_jwks(http, sandbox_server, body["access_token"], AUDIENCE)
    assert claims["iss"] == sandbox_server.issuer == sandbox_server.url + "/"
    assert claims["sub"] == "sandbox-client@clients"
    assert claims["azp"] == CLIENT_ID
    assert claims["gty"] == "client-credentials"
    assert claims["exp"] - claims["iat"] == 86400
    assert abs(claims["iat"] - time.time()) < 5


def test_two_tokens_issued_within_one_second_differ(sandbox_server, http):
    issued = [
        http.post(sandbox_server.url + TOKEN_PATH, data=token_form(), timeout=5).json()
        for _ in range(2)
    ]
    first, second = (answer["access_token"] for answer in issued)
    assert first != second
    claims = [jwt.decode(t, options={"verify_signature": False}) for t in (first, second)]
    assert claims[0]["jti"] != claims[1]["jti"]


def test_token_endpoint_accepts_a_json_body(sandbox_server, http):
    answer = http.post(sandbox_server.url + TOKEN_PATH, json=token_form(), timeout=5)

    assert answer.status_code == 200
    verify_with_jwks(http, sandbox_server, answer.json()["access_token"], AUDIENCE)


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
    sandbox_server, http, form, status, error, description
):
    answer = http.post(sandbox_server.url + TOKEN_PATH, data=form, timeout=5)

    assert answer.status_code == status
    body = answer.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    if description is not None:
        assert body["error_description"] == description
    assert "wrong-secret" not in answer.text


def test_token_endpoint_answers_405_to_get(sandbox_server, http):
    assert http.get(sandbox_server.url + TOKEN_PATH, timeout=5).status_code == 405


def test_token_ttl_comes_from_argument_else_environment(monkeypatch):
    monkeypatch.setenv("SANDBOX_TOKEN_TTL", "77")
    with Sandbox(port=0) as from_env, Sandbox(port=0, token_ttl=60) as from_argument:
        for running, ttl in ((from_env, 77), (from_argument, 60)):
            answer = requests.post(running.url + TOKEN_PATH, data=token_form(), timeout=5)
            assert answer.json()["expires_in"] == ttl
            claims = jwt.decode(answer.json()["access_token"], options={"verify_signature": False})
            assert claims["exp"] - claims["iat"] == ttl


def test_jwks_publishes_the_signing_key(sandbox_server, http):
    jwks = http.get(sandbox_server.url + "/.well-known/jwks.json", timeout=5).json()

    (jwk,) = jwks["keys"]
    assert jwk["kty"] == "RSA"
    assert jwk["alg"] == "RS256"
    assert jwk["use"] == "sig"
    assert "d" not in jwk  # public half only
    verify_with_jwks(http, sandbox_server, m2m_token(sandbox_server, http), AUDIENCE)
