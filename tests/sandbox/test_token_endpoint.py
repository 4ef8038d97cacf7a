"""The Auth0 token endpoint (client credentials) and the JWKS of the sandbox's signing key."""

from __future__ import annotations

import base64
import time

import jwt
import pytest
import requests

from local.sandbox import AUDIENCE, CLIENT_ID, CLIENT_SECRET, TOKEN_PATH, Sandbox
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


def test_unauthorized_client_names_the_grant_type(sandbox_server, http):
    form = token_form(grant_type="password")
    answer = http.post(sandbox_server.url + TOKEN_PATH, data=form, timeout=5)

    assert answer.status_code == 403
    assert answer.json() == {
        "error": "unauthorized_client",
        "error_description": "Grant type 'password' not allowed for the client.",
    }


@pytest.mark.parametrize("body", [b"{not json", b'["a JSON array"]'])
def test_a_json_body_that_is_not_an_object_is_invalid_request(sandbox_server, http, body):
    answer = http.post(
        sandbox_server.url + TOKEN_PATH,
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=5,
    )

    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_request",
        "error_description": "The request body is not valid.",
    }


def test_a_json_body_s_fields_that_are_not_strings_are_left_out(sandbox_server, http):
    answer = http.post(
        sandbox_server.url + TOKEN_PATH, json={**token_form(), "audience": 5}, timeout=5
    )

    assert answer.status_code == 403
    assert answer.json()["error_description"] == "Service not enabled within domain: "


def test_an_error_is_not_to_be_cached_either(sandbox_server, http):
    answer = http.post(sandbox_server.url + TOKEN_PATH, data=token_form(client_id="x"), timeout=5)

    assert answer.status_code == 401
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Pragma"] == "no-cache"


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _percent_encoded(text: str) -> str:
    return "".join(f"%{byte:02X}" for byte in text.encode())


NO_CLIENT = token_form(client_id=None, client_secret=None)


@pytest.mark.parametrize(
    ("headers", "form", "status", "error"),
    [
        # client_secret_basic: the client in the Authorization header, its parts URL-encoded.
        (_basic(CLIENT_ID, _percent_encoded(CLIENT_SECRET)), NO_CLIENT, 200, None),
        (_basic(_percent_encoded(CLIENT_ID), CLIENT_SECRET), NO_CLIENT, 200, None),
        (_basic(CLIENT_ID, "wrong-secret"), NO_CLIENT, 401, "invalid_client"),
        # The header is read when the form names no client (an empty client_id names none).
        (_basic(CLIENT_ID, CLIENT_SECRET), token_form(client_id=None), 200, None),
        (_basic(CLIENT_ID, CLIENT_SECRET), token_form(client_id=""), 200, None),
        # A client_id in the form wins over the header, secret and all.
        (_basic(CLIENT_ID, CLIENT_SECRET), token_form(client_secret=None), 401, "invalid_client"),
        (_basic(CLIENT_ID, CLIENT_SECRET), token_form(client_id="x"), 401, "access_denied"),
        # Not Basic, not base64, or no colon: no credentials.
        ({"Authorization": "Bearer abc"}, NO_CLIENT, 401, "access_denied"),
        ({"Authorization": "Basic !!!"}, NO_CLIENT, 401, "access_denied"),
        (
            {"Authorization": "Basic " + base64.b64encode(b"\xff:x").decode()},
            NO_CLIENT,
            401,
            "access_denied",
        ),
        (
            {"Authorization": "Basic " + base64.b64encode(CLIENT_ID.encode()).decode()},
            NO_CLIENT,
            401,
            "access_denied",
        ),
    ],
)
def test_the_client_may_authenticate_with_basic(sandbox_server, http, headers, form, status, error):
    answer = http.post(sandbox_server.url + TOKEN_PATH, data=form, headers=headers, timeout=5)

    assert answer.status_code == status
    if error is not None:
        assert answer.json()["error"] == error
    else:
        verify_with_jwks(http, sandbox_server, answer.json()["access_token"], AUDIENCE)
