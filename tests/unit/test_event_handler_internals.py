"""The Powertools internal `offer_state.event_handler.declared_query_names` reads (the matched
route in the resolver's context, its `dependant`): for every route of both functions, inside a
middleware, it gives the query parameters the public OpenAPI document lists for that route. A
Powertools upgrade that moves or reshapes them fails here. Each function runs in a fresh
interpreter (its module reads its settings at import)."""

from __future__ import annotations

import json

import pytest

from local.template import ROOT
from tests.support.fresh import run_fresh

_OFFER = "27686e93-63c8-57dc-9990-5e19c3ccf4e9"
_STATES = {"states": [{"name": "SAVE", "value": "SAVED"}]}
# A valid request of each route (Powertools validates before any middleware of ours runs).
# (method, path, query, body)
REQUESTS: dict[str, list[tuple[str, str, object, object]]] = {
    "get_state": [
        ("GET", "/health", None, None),
        ("GET", "/v1/offers/states", [("offerId", _OFFER)], None),
        ("GET", "/v1/offers/states/find", None, None),
        ("GET", "/v1/offers/states/count", None, None),
    ],
    "update_state": [
        ("PUT", f"/v1/offers/{_OFFER}/states", None, _STATES),
        ("PUT", "/v1/offers/states", None, {"stateChanges": [{"offerId": _OFFER, **_STATES}]}),
    ],
}

_PROGRAM = """
import json, sys
import app
from aws_lambda_powertools.event_handler.openapi.models import OAuth2, OAuthFlows
from local.events import http_api_event
from offer_state.event_handler import Response, declared_query_names
from offer_state.routes import SECURITY_SCHEME

declared = {}


def capture(resolver, next_middleware):
    request = resolver.request
    declared[f"{request.method} {request.route}"] = sorted(declared_query_names(resolver))
    return Response(status_code=204, body="")  # the route itself does not run


app.app.use([capture])
for method, path, query, body in json.loads(sys.argv[1]):
    event = http_api_event(
        method,
        path,
        route_key="$default",
        query=[tuple(pair) for pair in query or []],
        headers={"content-type": "application/json"},
        body=json.dumps(body) if body is not None else None,
    )
    answer = app.app.resolve(event, None)
    assert answer["statusCode"] == 204, (path, answer)
schema = json.loads(
    app.app.get_openapi_json_schema(security_schemes={SECURITY_SCHEME: OAuth2(flows=OAuthFlows())})
)
documented = {
    f"{method.upper()} {path}": sorted(
        p["name"] for p in operation.get("parameters", []) if p["in"] == "query"
    )
    for path, item in schema["paths"].items()
    for method, operation in item.items()
}
print(json.dumps({"declared": declared, "documented": documented}))
"""


@pytest.mark.parametrize("function", sorted(REQUESTS))
def test_declared_query_names_are_the_openapi_documents_query_parameters(function: str):
    found = run_fresh(_PROGRAM, json.dumps(REQUESTS[function]), cwd=ROOT / "functions" / function)
    assert found["declared"] == found["documented"]
    assert len(found["declared"]) == len(REQUESTS[function])  # every route was asked
    if function == "get_state":  # not vacuous: a scalar parameter, and a model's fields
        assert found["declared"]["GET /v1/offers/states"] == ["offerId"]
        assert len(found["declared"]["GET /v1/offers/states/find"]) == 9
