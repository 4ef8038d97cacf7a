"""The template reader the tests and the local stack share."""

from __future__ import annotations

import re
from typing import Any

import pytest

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


SMALL_TEMPLATE = """\
Parameters:
  Stage: {Type: String, Default: prod}
  Origins: {Type: CommaDelimitedList, Default: "http://a, http://b"}
Mappings:
  Limits: {prod: {Rate: 50}}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  IsDev: !Not [{Condition: IsProd}]  # long form: _tag reads !Condition as Fn::Condition
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: {}
  Table:
    Type: AWS::DynamoDB::Table
    Properties: {}
  Key:
    Type: AWS::KMS::Key
    Properties: {}
"""


@pytest.fixture(scope="module")
def small_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    path = tmp_path_factory.mktemp("template") / "template.yaml"
    path.write_text(SMALL_TEMPLATE)
    return Template(path, resource_refs={"Table": "tbl", "Key": "k-1"})


@pytest.mark.parametrize(
    ("expression", "resolved"),
    [
        ({"Ref": "Stage"}, "prod"),
        ({"Ref": "Origins"}, ["http://a", "http://b"]),
        ({"Ref": "Table"}, "tbl"),
        ({"Ref": "AWS::Region"}, "us-east-1"),
        ({"Ref": "AWS::AccountId"}, "123456789012"),
        ({"Ref": "AWS::StackName"}, "offer-state-local"),
        (
            {"Ref": "AWS::StackId"},
            "arn:aws:cloudformation:us-east-1:123456789012:stack/offer-state-local/local",
        ),
        ({"Ref": "AWS::Partition"}, "aws"),
        ({"Ref": "AWS::URLSuffix"}, "amazonaws.com"),
        ({"a": {"Ref": "AWS::NoValue"}, "b": [1, {"Ref": "AWS::NoValue"}]}, {"b": [1]}),
        ({"Condition": "IsProd"}, True),
        ({"Condition": "IsDev"}, False),
        ({"Fn::If": ["IsProd", "yes", {"Ref": "Stage"}]}, "yes"),
        ({"Fn::If": ["IsDev", "yes", {"Ref": "Stage"}]}, "prod"),
        ({"Fn::Equals": [50, "50"]}, True),
        ({"Fn::Equals": [{"Ref": "Stage"}, "dev"]}, False),
        ({"Fn::Not": [{"Condition": "IsProd"}]}, False),
        ({"Fn::And": [True, {"Condition": "IsProd"}]}, True),
        ({"Fn::And": [True, {"Condition": "IsDev"}]}, False),
        ({"Fn::Or": [False, {"Condition": "IsDev"}]}, False),
        ({"Fn::Or": [False, {"Condition": "IsProd"}]}, True),
        ({"Fn::FindInMap": ["Limits", {"Ref": "Stage"}, "Rate"]}, 50),
        ({"Fn::Split": [",", {"Fn::Join": [",", ["a", "b"]]}]}, ["a", "b"]),
        ({"Fn::Join": ["-", [{"Ref": "Stage"}, 1]]}, "prod-1"),
        ({"Fn::Select": ["1", ["a", {"Ref": "Stage"}]]}, "prod"),
        (
            {"Fn::GetAtt": ["Table", "Arn"]},
            "arn:aws:dynamodb:us-east-1:123456789012:table/tbl",
        ),
        ({"Fn::GetAtt": "Key.Arn"}, "arn:aws:kms:us-east-1:123456789012:key/k-1"),
        (
            {"Fn::GetAtt": ["FnRole", "Arn"]},
            "arn:aws:iam::123456789012:role/offer-state-local-FnRole",
        ),
        (
            {"Fn::Sub": "${Stage}:${AWS::Region}:${Table.Arn}"},
            "prod:us-east-1:arn:aws:dynamodb:us-east-1:123456789012:table/tbl",
        ),
        ({"Fn::Sub": ["${Stage}/${Extra}", {"Extra": {"Ref": "Table"}}]}, "prod/tbl"),
    ],
)
def test_each_intrinsic_resolves(small_template: Template, expression: Any, resolved: Any):
    assert small_template.resolve(expression) == resolved


@pytest.mark.parametrize(
    ("expression", "error", "message"),
    [
        ({"Fn::Base64": "x"}, NotImplementedError, "Fn::Base64 is not resolved locally"),
        ({"Fn::GetAZs": ""}, NotImplementedError, "Fn::GetAZs is not resolved locally"),
        ({"Ref": "Nothing"}, KeyError, "no local value for Ref Nothing"),
        ({"Fn::GetAtt": ["Table", "StreamArn"]}, KeyError, "GetAtt Table.StreamArn"),
    ],
)
def test_an_intrinsic_not_resolved_locally_raises(
    small_template: Template, expression: Any, error: type[Exception], message: str
):
    with pytest.raises(error, match=re.escape(message)):
        small_template.resolve(expression)
