"""The local gateway's own behaviour, with a small function and template made for it."""

from __future__ import annotations

import json
import os
import signal
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from local.functions import FunctionPool, FunctionSpec
from local.gateway import JwtAuthorizer, LocalGateway
from local.issuer import DevIssuer, IssuerServer
from local.template import ROOT, Template
from tests.support.raw_http import raw_exchange, request_bytes
from tests.support.stack import child_pids

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Issuer:
    Type: String
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            JwtConfiguration: {issuer: !Ref Issuer, audience: [offer-state-gateway]}
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: CODE
      Handler: app.lambda_handler
      Runtime: python3.13
      Timeout: 1
      MemorySize: 192
      Environment:
        Variables:
          FROM_TEMPLATE: !Sub "${Issuer}/x"
      Events: EVENTS
"""


OPEN = {"Authorizer": "NONE"}
EVENTS = {
    "Plain": {"Path": "/plain", "Method": "GET", "Auth": OPEN},
    "Items": {"Path": "/items/{id}", "Method": "GET", "Auth": OPEN},
    "Literal": {"Path": "/items/special", "Method": "GET", "Auth": OPEN},
    "Raise": {"Path": "/raise", "Method": "GET", "Auth": OPEN},
    "Slow": {"Path": "/slow", "Method": "GET", "Auth": OPEN},
    "Binary": {"Path": "/binary", "Method": "POST", "Auth": OPEN},
    "Secured": {
        "Path": "/secured",
        "Method": "GET",
        "Auth": {"AuthorizationScopes": ["offers/state.read"]},
    },
}


@pytest.fixture(scope="module")
def echo_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Template, DevIssuer]]:
    """The template of the echo function, and the dev issuer its authorizer trusts (serving)."""
    folder = tmp_path_factory.mktemp("gateway")
    code = Path(__file__).parent / "echo_function"
    path = folder / "template.yaml"
    events = json.dumps({k: {"Type": "HttpApi", "Properties": v} for k, v in EVENTS.items()})
    text = textwrap.dedent(TEMPLATE).replace("CODE", str(code.relative_to(ROOT)))
    path.write_text(text.replace("EVENTS", events))  # JSON is YAML
    issuer = DevIssuer("http://127.0.0.1:0", folder / "key.pem")
    issuer_server = IssuerServer(issuer, port=0).start()
    issuer.issuer = f"http://127.0.0.1:{issuer_server.port}"  # known once it listens
    yield Template(path, parameters={"Issuer": issuer.issuer}), issuer
    issuer_server.stop()


def _echo_pool(template: Template, **kwargs: Any) -> FunctionPool:
    return FunctionPool(
        FunctionSpec.from_template(template, "EchoFunction", "http://127.0.0.1:1"), **kwargs
    )


@pytest.fixture(scope="module")
def gateway(echo_template: tuple[Template, DevIssuer]) -> Iterator[tuple[str, DevIssuer]]:
    template, issuer = echo_template
    pool = _echo_pool(template)
    server = LocalGateway(
        template,
        {"EchoFunction": pool},
        JwtAuthorizer(issuer.issuer, ["offer-state-gateway"]),
        port=0,
    ).start()
    yield f"http://127.0.0.1:{server.port}", issuer
    server.stop()
    pool.close()


def test_a_plain_object_becomes_a_200_json_answer_with_the_event_as_api_gateway_builds_it(gateway):
    url, _ = gateway
    answer = requests.get(
        f"{url}/plain?a=1&a=2&b=x%20y", headers={"X-Thing": "v", "Cookie": "c=1"}, timeout=10
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    body = answer.json()
    event = body["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /plain"
    assert event["rawQueryString"] == "a=1&a=2&b=x%20y"
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x y"}
    assert event["headers"]["x-thing"] == "v"
    assert event["cookies"] == ["c=1"]
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["requestContext"]["requestId"] == answer.headers["apigw-requestid"]
    assert event["requestContext"]["timeEpoch"] > 0
    assert 0 < body["remaining_ms"] <= 1000
    assert body["memory"] == 192
    env = body["env"]
    assert env["FROM_TEMPLATE"] == f"{gateway[1].issuer}/x"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert "VIRTUAL_ENV" not in env and "PYTEST_CURRENT_TEST" not in env  # nothing of ours leaks in


def test_literal_paths_win_over_variables(gateway):
    url, _ = gateway
    assert (
        requests.get(f"{url}/items/special", timeout=10).json()["event"]["routeKey"]
        == "GET /items/special"
    )
    event = requests.get(f"{url}/items/42", timeout=10).json()["event"]
    assert (event["routeKey"], event["pathParameters"]) == ("GET /items/{id}", {"id": "42"})


def test_status_headers_cookies_and_base64_bodies_are_translated(gateway):
    url, _ = gateway
    answer = requests.post(f"{url}/binary", timeout=10)
    assert answer.status_code == 201
    assert answer.headers["Content-Type"] == "image/png"
    assert answer.headers["X-Extra"] == "1"
    assert answer.content == b"\x89PNG\x00\xff"
    assert answer.raw.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2"]


def test_a_handler_that_raises_is_an_internal_server_error(gateway):
    url, _ = gateway
    answer = requests.get(f"{url}/raise", timeout=10)
    assert (answer.status_code, answer.json()) == (500, {"message": "Internal Server Error"})
    assert requests.get(f"{url}/plain", timeout=10).status_code == 200  # the environment lives on


def test_a_handler_past_its_timeout_is_an_internal_server_error(gateway):
    url, _ = gateway
    answer = requests.get(f"{url}/slow", timeout=10)
    assert (answer.status_code, answer.json()) == (500, {"message": "Internal Server Error"})
    assert requests.get(f"{url}/plain", timeout=10).status_code == 200  # a new environment


def test_the_authorizer_wants_a_token_401_and_the_route_scope_403(gateway):
    url, issuer = gateway
    assert requests.get(f"{url}/secured", timeout=10).status_code == 401
    no_scope = issuer.token(collector="80000000110", scopes=("other",))
    assert (
        requests.get(
            f"{url}/secured", headers={"Authorization": f"Bearer {no_scope}"}, timeout=10
        ).status_code
        == 403
    )
    good = issuer.token(collector="80000000110", scopes=("offers/state.read",))
    answer = requests.get(f"{url}/secured", headers={"Authorization": f"Bearer {good}"}, timeout=10)
    assert answer.status_code == 200


def test_an_unknown_path_or_an_undeclared_method_is_not_found(gateway):
    url, _ = gateway
    assert requests.get(f"{url}/nope", timeout=10).json() == {"message": "Not Found"}
    assert requests.delete(f"{url}/plain", timeout=10).status_code == 404


# Every method, declared path or not: only GET /plain is declared there.
@pytest.mark.parametrize("target", ["/plain", "/nope"])
@pytest.mark.parametrize("method", ["TRACE", "PATCH", "DELETE", "POST", "HEAD", "FOO", "CONNECT"])
def test_undeclared_methods_and_paths_get_api_gateways_404(gateway, method, target):
    answer = raw_exchange(_port(gateway), request_bytes(method, target), head=method == "HEAD")
    _assert_not_found(answer, method)


def test_a_connect_request_line_gets_api_gateways_404(gateway):
    answer = raw_exchange(_port(gateway), b"CONNECT example.com:443 HTTP/1.1\r\n\r\n")
    _assert_not_found(answer, "CONNECT")


@pytest.mark.parametrize(
    "request_data",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /plain\r\n\r\n",
        request_bytes("POST", "/binary", "Content-Length: abc"),
        request_bytes("POST", "/binary", "Content-Length: -1"),
        request_bytes("POST", "/binary", "Content-Length: 1", "Content-Length: 2", body=b"ab"),
    ],
    ids=[
        "garbage",
        "HTTP/9.9",
        "HTTP/0.9",
        "Content-Length abc",
        "Content-Length -1",
        "two Content-Lengths",
    ],
)
def test_a_request_the_gateway_cannot_read_is_a_400_json_answer(gateway, request_data):
    answer = raw_exchange(_port(gateway), request_data)
    assert answer.status == 400
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"message": "Bad Request"}


def test_a_body_over_10_mb_is_a_413_json_answer(gateway):
    request_data = request_bytes("POST", "/binary", f"Content-Length: {10 * 1024 * 1024 + 1}")
    answer = raw_exchange(_port(gateway), request_data)
    assert (answer.status, answer.json()) == (413, {"message": "Request Entity Too Large"})


def test_an_environment_ignores_sigint_and_ends_quietly_when_its_input_ends(
    echo_template, capsys: pytest.CaptureFixture[str]
):
    """A terminal's Ctrl-C reaches the function environments too: they live on (the stack
    ends them) and print no KeyboardInterrupt traceback."""
    before = child_pids(os.getpid())
    pool = _echo_pool(echo_template[0], max_environments=1)
    try:
        pool.warm()
        [pid] = child_pids(os.getpid()) - before
        os.kill(pid, signal.SIGINT)
        assert pool.invoke({"rawPath": "/other"}) == {"result": {"statusCode": 200, "body": "ok"}}
        assert child_pids(os.getpid()) - before == {pid}  # the same environment answered
    finally:
        pool.close()
    assert not Path(f"/proc/{pid}").exists()
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "KeyboardInterrupt" not in out + err


def _port(gateway: tuple[str, DevIssuer]) -> int:
    port = urlsplit(gateway[0]).port
    assert port is not None
    return port


def _assert_not_found(answer, method: str) -> None:
    assert answer.status == 404
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.body == (b"" if method == "HEAD" else b'{"message":"Not Found"}')
