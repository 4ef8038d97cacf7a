"""The partner API's OpenAPI document, generated from the handlers' own route definitions and
models (both functions, merged with Powertools' OpenAPIMerge) and committed as openapi.json.

    python -m local.openapi           # write openapi.json (`make openapi`)
    python -m local.openapi --check   # exit 1 if openapi.json is not what the code generates
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

from local.functions import LAYER_PYTHON
from local.template import ROOT, Template

OPENAPI_PATH = ROOT / "openapi.json"
# The handlers read their settings at import: any well-formed values do for generating.
_PLACEHOLDERS = {
    "JwtIssuer": "https://login.example.com/",
    "JwtAudience": "offer-state-gateway",
}
_REFS = {
    "AuditTable": "audit",
    "IdempotencyTable": "idempotency",
    "AirMilesSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:airmiles",
    "OfferStateLayer": "layer",
    "PseudonymKey": "0b9d6a1e-5c3f-4d8e-9a2b-7f1e3c5d4a60",
    "TokenTable": "token",
    "TokenKey": "5f0c2a7e-8d1b-4c3a-9e6f-2b4d7a1c9e30",
}
DESCRIPTION = (
    "Read and change a Collector's AIR MILES offer states (saved, opted in) through the "
    "partner's own gateway. Every answer carries X-Correlation-Id (yours when you send a valid "
    "UUID). A member token names its collector in its claim; a machine token (scope "
    "offers/state.m2m) names it in the Collector-Number header. Errors share one shape: "
    "ErrorAnswer, with a stable `code`. A change whose answer from AIR MILES was lost is "
    "OUTCOME_UNKNOWN: read the states again and, if the change is not there, send it again "
    "with a new Idempotency-Key."
)
# Who answers for the API, and under what terms: the deploying partner's own. Placeholders,
# like the server and token URLs: a partner publishing this document puts its own in.
CONTACT = {
    "name": "Offer State Gateway team",
    "url": "https://www.example.com/offer-state-gateway/support",
    "email": "offer-state-gateway@example.com",
}
LICENSE = {"name": "Proprietary", "url": "https://www.example.com/offer-state-gateway/terms"}


def generate() -> dict[str, Any]:
    if str(LAYER_PYTHON) not in sys.path:
        sys.path.insert(0, str(LAYER_PYTHON))
    from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
    from aws_lambda_powertools.event_handler.openapi.models import (
        Contact,
        License,
        OAuth2,
        OAuthFlowAuthorizationCode,
        OAuthFlowClientCredentials,
        OAuthFlows,
        SecurityScheme,
        Server,
        Tag,
    )

    import offer_state
    from offer_state.routes import SECURITY_SCHEME, TAGS

    scopes = {
        "offers/state.read": "Read the collector's offer states",
        "offers/state.write": "Change the collector's offer states",
        "offers/state.m2m": "Partner back end: name the collector in Collector-Number",
    }
    token_url = "https://login.example.com/oauth/token"  # noqa: S105 - a URL, an example
    member_flow = OAuthFlowAuthorizationCode(
        authorizationUrl="https://login.example.com/authorize", tokenUrl=token_url, scopes=scopes
    )
    machine_flow = OAuthFlowClientCredentials(tokenUrl=token_url, scopes=scopes)
    security_schemes: dict[str, SecurityScheme] = {
        SECURITY_SCHEME: OAuth2(
            description="A JWT of the partner's identity provider, checked by API Gateway's "
            "JWT authorizer (issuer JwtIssuer, audience JwtAudience). URLs are examples.",
            flows=OAuthFlows(authorizationCode=member_flow, clientCredentials=machine_flow),
        )
    }
    merge = OpenAPIMerge(
        title="Offer State Gateway",
        version=offer_state.__version__,
        description=DESCRIPTION,
        contact=Contact.model_validate(CONTACT),
        license_info=License.model_validate(LICENSE),
        tags=[Tag(name=name, description=text) for name, text in TAGS.items()],
        servers=[
            Server(
                url="https://abc123.execute-api.ca-central-1.amazonaws.com",
                description="deployed (ApiUrl)",
            ),
            Server(url="http://127.0.0.1:3000", description="local stack (make run)"),
        ],
        security_schemes=security_schemes,
        on_conflict="error",
    )
    template = Template(parameters=_PLACEHOLDERS, resource_refs=_REFS)
    saved = dict(os.environ)
    try:
        # The functions that serve routes (a scheduled one has no resolver and no route).
        for function in dict.fromkeys(route.function for route in template.routes()):
            os.environ.update(template.function_environment(function))
            resolver = _load_handler(template, function).app
            # Each resolver checks its routes' security against the schemes it is given.
            merge.add_schema(resolver.get_openapi_schema(security_schemes=security_schemes))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return _refined(json.loads(merge.get_openapi_json_schema()))


def _refined(schema: dict[str, Any]) -> dict[str, Any]:
    """What Powertools cannot know, from the code's own constants: validation errors are our
    400 (Powertools documents its default 422), an unexpected failure is our 500 error shape,
    and FIND/COUNT's query model becomes typed parameters (Powertools types them as strings),
    with the examples the route table gives them (Powertools has nowhere to take them from)."""
    from offer_state import routes

    typed = _typed_query_parameters()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            examples = routes.parameter_examples(f"{method.upper()} {path}")
            _refine_responses(operation["responses"])
            for parameter in operation.get("parameters", []):
                _refine_parameter(parameter, typed, examples)
    # Keep the component schemas something refers to (Powertools also lists its own
    # validation-error shapes and the query models it flattened).
    kept = _referenced_schemas(schema)
    components = schema["components"]["schemas"]
    schema["components"]["schemas"] = {k: v for k, v in components.items() if k in kept}
    return schema


def _typed_query_parameters() -> dict[str, dict[str, Any]]:
    """The schema of each FIND/COUNT query parameter, by name."""
    from offer_state import upstream

    pairs = [f"{n}:{v}" for n, values in upstream.ALLOWED_STATES.items() for v in sorted(values)]
    return {
        "state": {"type": "array", "items": {"type": "string", "enum": pairs}},
        "partnerId": {"type": "string", "format": "uuid"},
        "region": {"type": "string", "enum": sorted(upstream.REGIONS)},
        "firstSortBy": {"type": "string", "enum": list(upstream.SORT_FIELDS)},
        "secondSortBy": {"type": "string", "enum": list(upstream.SORT_FIELDS)},
        "firstSortByDescending": {"type": "boolean"},
        "secondSortByDescending": {"type": "boolean"},
        "pageNumber": {"type": "integer", "minimum": upstream.PAGE_NUMBER_FIRST, "default": 0},
        "pageSize": {
            "type": "integer",
            "minimum": 1,
            "maximum": upstream.PAGE_SIZE_MAX,
            "default": upstream.PAGE_SIZE_DEFAULT,
        },
    }


def _refine_responses(responses: dict[str, Any]) -> None:
    """No 422; a 500 that Powertools lists is our error shape."""
    responses.pop("422", None)
    if "500" in responses:
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorAnswer"}}}
        responses["500"] = {
            "description": "The gateway failed unexpectedly (INTERNAL_ERROR)",
            "content": error,
        }


def _refine_parameter(
    parameter: dict[str, Any], typed: dict[str, dict[str, Any]], examples: Mapping[str, object]
) -> None:
    """A typed query parameter gets its schema (`state` repeats) and its example."""
    name = parameter["name"]
    if parameter["in"] != "query" or name not in typed:
        return
    parameter["schema"] = typed[name]
    if name == "state":
        parameter.update(style="form", explode=True)
    if name in examples:
        parameter["examples"] = {"example": {"value": examples[name]}}


def _referenced_schemas(schema: dict[str, Any]) -> set[str]:
    """The component schemas the paths refer to, directly or through another component."""
    components = schema["components"]["schemas"]
    kept: set[str] = set()
    pending = [json.dumps(schema["paths"])]
    while pending:
        for name in re.findall(r"#/components/schemas/(\w+)", pending.pop()):
            if name not in kept:
                kept.add(name)
                pending.append(json.dumps(components[name]))
    return kept


def _load_handler(template: Template, function: str) -> Any:
    """The function's handler module, under a name of its own (both are `app.py`)."""
    props = template.function_properties(function)
    module_name, _ = props["Handler"].rsplit(".", 1)
    spec = importlib.util.spec_from_file_location(
        f"_openapi_{function}", ROOT / props["CodeUri"] / f"{module_name}.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make openapi", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    text = render(generate())
    if args.check:
        if not OPENAPI_PATH.exists() or OPENAPI_PATH.read_text() != text:
            print("openapi.json differs from what the code generates: run `make openapi`")
            return 1
        print("openapi.json is up to date")
        return 0
    OPENAPI_PATH.write_text(text)
    paths = json.loads(text)["paths"]
    print(f"wrote {OPENAPI_PATH.name}: {sum(len(v) for v in paths.values())} operations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
