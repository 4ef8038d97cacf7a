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


# The keys every event has, in their order.
ALWAYS_IN_EVENT = [
    "version",
    "routeKey",
    "rawPath",
    "rawQueryString",
    "headers",
    "requestContext",
    "isBase64Encoded",
]


def test_event_is_whole_with_every_part_given():
    event = http_api_event(
        "put",
        "/v1/offers/abc/states",
        route_key="PUT /v1/offers/{offerId}/states",
        path_parameters={"offerId": "abc"},
        query="a=1&a=&b=2",
        headers={
            "Host": "api.example.com",
            "User-Agent": "ua/1",
            "Content-Type": "application/json",
            "Cookie": "k=v; ;j=w",
        },
        body='{"x": 1}',
        claims={"sub": "s", "admin": True},
        scopes=[],
        source_ip="10.0.0.1",
        request_id="rid",
        time_epoch_ms=1773238800434,
    )

    assert event == {
        "version": "2.0",
        "routeKey": "PUT /v1/offers/{offerId}/states",
        "rawPath": "/v1/offers/abc/states",
        "rawQueryString": "a=1&a=&b=2",
        "headers": {
            "host": "api.example.com",
            "user-agent": "ua/1",
            "content-type": "application/json",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": "PUT",
                "path": "/v1/offers/abc/states",
                "protocol": "HTTP/1.1",
                "sourceIp": "10.0.0.1",
                "userAgent": "ua/1",
            },
            "requestId": "rid",
            "routeKey": "PUT /v1/offers/{offerId}/states",
            "stage": "$default",
            "time": "11/Mar/2026:14:20:00 +0000",
            "timeEpoch": 1773238800434,
            "authorizer": {"jwt": {"claims": {"sub": "s", "admin": "true"}, "scopes": None}},
        },
        "isBase64Encoded": False,
        "cookies": ["k=v", "j=w"],
        "queryStringParameters": {"a": "1,", "b": "2"},
        "pathParameters": {"offerId": "abc"},
        "body": '{"x": 1}',
    }
    # the key order too: the event is handed on as JSON, and its dumps keep that order
    assert list(event) == [
        *ALWAYS_IN_EVENT,
        "cookies",
        "queryStringParameters",
        "pathParameters",
        "body",
    ]


def test_event_leaves_out_the_parts_not_given():
    event = http_api_event("GET", "/health", route_key="GET /health", time_epoch_ms=0)

    assert list(event) == ALWAYS_IN_EVENT
    assert (event["rawQueryString"], event["headers"]) == ("", {})
    context = event["requestContext"]
    assert (context["domainName"], context["domainPrefix"]) == ("127.0.0.1", "127")
    assert (context["http"]["userAgent"], context["http"]["sourceIp"]) == ("", "127.0.0.1")
    assert (context["time"], context["timeEpoch"]) == ("01/Jan/1970:00:00:00 +0000", 0)
    assert "authorizer" not in context
    assert len(context["requestId"]) == 36  # a fresh uuid4
