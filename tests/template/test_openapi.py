"""openapi.json: generated from the handlers, committed, valid, and true to template.yaml."""

from __future__ import annotations

import json

import pytest
from openapi_spec_validator import validate

from local.openapi import OPENAPI_PATH, generate, render
from local.template import Template

DOCUMENT = json.loads(OPENAPI_PATH.read_text())
PARAMS = {"JwtIssuer": "https://issuer.example/", "JwtAudience": "offer-state-gateway"}


def test_committed_document_is_what_the_code_generates():
    assert OPENAPI_PATH.read_text() == render(generate()), (
        "run `make openapi` and commit openapi.json"
    )


def test_document_is_valid_openapi():
    validate(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.")


def test_every_template_route_and_only_those_with_their_scopes():
    routes = {(r.method.lower(), r.path): r for r in Template(parameters=PARAMS).routes()}
    documented = {
        (method, path): operation
        for path, operations in DOCUMENT["paths"].items()
        for method, operation in operations.items()
    }
    assert set(documented) == set(routes)
    for key, operation in documented.items():
        expected = [{"partnerJwt": list(routes[key].scopes)}] if routes[key].scopes else []
        assert operation.get("security", []) == expected, key


def test_security_scheme_lists_the_scopes():
    scheme = DOCUMENT["components"]["securitySchemes"]["partnerJwt"]
    scopes = scheme["flows"]["clientCredentials"]["scopes"]
    assert set(scopes) == {"offers/state.read", "offers/state.write", "offers/state.m2m"}


@pytest.mark.parametrize("status", ["400", "403", "429", "502", "503", "504"])
def test_errors_have_the_one_documented_shape(status):
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            if path == "/health" and status in ("400", "403", "429"):
                continue
            content = operation["responses"][status]["content"]["application/json"]
            expected: dict[str, object] = {"$ref": "#/components/schemas/ErrorAnswer"}
            if status in ("403", "429"):  # API Gateway answers these too, in its own shape
                expected = {"oneOf": [expected, {"$ref": "#/components/schemas/GatewayMessage"}]}
            assert content["schema"] == expected, (method, path)
    error = DOCUMENT["components"]["schemas"]["ErrorAnswer"]
    assert set(error["required"]) == {"error", "correlationId"}
    info = DOCUMENT["components"]["schemas"]["ErrorInfo"]
    assert set(info["properties"]) == {"code", "message", "details"}


def test_the_document_has_no_422_answer_or_framework_validation_schema():
    for operations in DOCUMENT["paths"].values():
        for operation in operations.values():
            assert "422" not in operation["responses"]  # validation errors are our 400
    assert "HTTPValidationError" not in DOCUMENT["components"]["schemas"]


def test_find_parameters_are_typed():
    parameters = {
        p["name"]: p for p in DOCUMENT["paths"]["/v1/offers/states/find"]["get"]["parameters"]
    }
    assert parameters["pageSize"]["schema"]["maximum"] == 100
    assert "SAVE:SAVED" in parameters["state"]["schema"]["items"]["enum"]
    assert "ON" in parameters["region"]["schema"]["enum"]


# The names a partner's generated client calls each operation by: renaming one breaks it.
OPERATION_IDS = {
    ("get", "/health"): "getHealth",
    ("get", "/v1/offers/states"): "getStates",
    ("get", "/v1/offers/states/find"): "findStates",
    ("get", "/v1/offers/states/count"): "countStates",
    ("put", "/v1/offers/{offerId}/states"): "updateOfferStates",
    ("put", "/v1/offers/states"): "updateStates",
}


def _operations():
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            yield (method, path), operation


def test_each_operation_has_its_stable_name_a_tag_a_description_and_examples():
    assert {key: op["operationId"] for key, op in _operations()} == OPERATION_IDS
    tags = {tag["name"] for tag in DOCUMENT["tags"]}
    for key, operation in _operations():
        assert operation["tags"] and set(operation["tags"]) <= tags, key
        assert operation["description"] and operation["summary"], key
        assert operation["responses"]["200"]["content"]["application/json"]["examples"], key
        if "requestBody" in operation:
            assert operation["requestBody"]["content"]["application/json"]["examples"], key


def test_the_writes_document_an_unknown_outcome_with_its_code_and_what_to_do():
    for key, operation in _operations():
        if key[0] != "put":
            continue
        for status in ("502", "504"):
            answer = operation["responses"][status]
            assert "OUTCOME_UNKNOWN" in answer["description"], key
            example = answer["content"]["application/json"]["examples"]["OUTCOME_UNKNOWN"]
            assert "new Idempotency-Key" in example["value"]["error"]["message"]


def test_info_names_a_contact_and_a_license():
    info = DOCUMENT["info"]
    assert info["contact"]["url"] and info["contact"]["email"]
    assert info["license"]["name"] and info["license"]["url"]


def test_request_headers_are_strings_never_null():
    """A header cannot be null; and a generator may type a `format: uuid` header as a UUID
    object and pass it to its HTTP library as is (openapi-python-client does): Idempotency-Key
    is a string with the UUID pattern."""
    for key, operation in _operations():
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "header":
                schema = parameter["schema"]
                assert schema["type"] == "string" and "anyOf" not in schema, (key, parameter)
                if parameter["name"] == "idempotency-key":
                    assert "format" not in schema and "pattern" in schema
