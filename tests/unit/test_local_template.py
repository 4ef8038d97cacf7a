"""The template reader the tests and the local stack share."""

from __future__ import annotations

from local.events import http_api_event
from local.template import Template

PARAMS = {"JwtIssuer": "https://issuer/", "JwtAudience": "a,b"}
REFS = {
    "AuditTable": "audit",
    "IdempotencyTable": "idem",
    "AirMilesSecret": "arn:secret",
    "OfferStateLayer": "layer",
    "PseudonymKey": "0b9d6a1e-5c3f-4d8e-9a2b-7f1e3c5d4a60",
    "TokenTable": "token",
    "TokenKey": "5e2c7a90-1d4b-4f3e-8c6a-2b9d0e7f1a35",
}


def test_function_environment_merges_globals_and_resolves_intrinsics():
    env = Template(parameters=PARAMS, resource_refs=REFS).function_environment(
        "UpdateStateFunction"
    )
    assert env["AIRMILES_ENV"] == "uat"
    assert env["AIRMILES_TOKEN_URL"] == "https://oauth-cert.airmiles.ca/oauth/token"
    assert env["AUDIT_TABLE_NAME"] == "audit"
    assert env["IDEMPOTENCY_TABLE_NAME"] == "idem"
    assert env["SECRET_ID"] == "arn:secret"
    assert env["TOKEN_TABLE_NAME"] == "token"
    assert "IDEMPOTENCY_TABLE_NAME" not in Template(
        parameters=PARAMS, resource_refs=REFS
    ).function_environment("GetStateFunction")


def test_a_functions_generated_role_has_an_arn():
    template = Template(parameters=PARAMS, resource_refs=REFS)
    assert template.resolve({"Fn::GetAtt": ["GetStateFunctionRole", "Arn"]}) == (
        "arn:aws:iam::123456789012:role/offer-state-local-GetStateFunctionRole"
    )


def test_parameters_switch_environment_and_secret():
    template = Template(
        parameters={
            **PARAMS,
            "Environment": "prod",
            "ExistingSecretArn": "arn:existing",
            "AirMilesBaseUrl": "http://127.0.0.1:1",
        },
        resource_refs=REFS,
    )
    env = template.function_environment("GetStateFunction")
    assert env["AIRMILES_ENV"] == "http://127.0.0.1:1"
    assert env["AIRMILES_TOKEN_URL"] == "https://oauth.airmiles.ca/oauth/token"
    assert env["SECRET_ID"] == "arn:existing"
    assert template.parameters["JwtAudience"] == ["a", "b"]


def test_routes_come_from_the_function_events():
    routes = {(r.method, r.path): r for r in Template(parameters=PARAMS).routes()}
    assert set(routes) == {
        ("GET", "/health"),
        ("GET", "/v1/offers/states"),
        ("GET", "/v1/offers/states/find"),
        ("GET", "/v1/offers/states/count"),
        ("PUT", "/v1/offers/{offerId}/states"),
        ("PUT", "/v1/offers/states"),
    }
    assert routes[("GET", "/health")].authorizer is None
    assert routes[("PUT", "/v1/offers/states")].scopes == ("offers/state.write",)
    match = routes[("PUT", "/v1/offers/{offerId}/states")].pattern.match("/v1/offers/abc/states")
    assert match is not None
    assert match.groupdict() == {"offerId": "abc"}


def test_cors_only_when_origins_are_given():
    assert Template(parameters=PARAMS).http_api_cors() is None
    cors = Template(parameters={**PARAMS, "CorsAllowOrigins": "http://a,http://b"}).http_api_cors()
    assert cors is not None
    assert cors["AllowOrigins"] == ["http://a", "http://b"]
    assert "Idempotency-Key" in cors["AllowHeaders"]


def test_event_joins_repeated_query_keys_and_lowercases_headers():
    event = http_api_event(
        "GET",
        "/v1/offers/states",
        route_key="GET /v1/offers/states",
        query=[("offerId", "a"), ("offerId", "b"), ("x", "1")],
        headers=[
            ("X-Correlation-Id", "c"),
            ("Accept", "a"),
            ("accept", "b"),
            ("Cookie", "k=v; j=w"),
        ],
        claims={"sub": "s", "n": 5, "groups": ["g1", "g2"]},
        scopes=["offers/state.read"],
    )
    assert event["rawQueryString"] == "offerId=a&offerId=b&x=1"
    assert event["queryStringParameters"] == {"offerId": "a,b", "x": "1"}
    assert event["headers"] == {"x-correlation-id": "c", "accept": "a,b"}
    assert event["cookies"] == ["k=v", "j=w"]
    assert event["requestContext"]["authorizer"]["jwt"]["claims"] == {
        "sub": "s",
        "n": "5",
        "groups": "[g1 g2]",
    }
    assert event["requestContext"]["authorizer"]["jwt"]["scopes"] == ["offers/state.read"]


def test_binary_bodies_are_base64():
    event = http_api_event(
        "PUT",
        "/x",
        route_key="PUT /x",
        body=b"\xff\x00",
        headers={"content-type": "application/octet-stream"},
    )
    assert event["isBase64Encoded"] is True
    text = http_api_event(
        "PUT", "/x", route_key="PUT /x", body="{}", headers={"content-type": "application/json"}
    )
    assert (text["body"], text["isBase64Encoded"]) == ("{}", False)
