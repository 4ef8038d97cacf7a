"""The local gateway: what API Gateway (HTTP API) does in front of the functions, on loopback.

- serves exactly the `HttpApi` routes template.yaml declares (anything else:
  `404 {"message":"Not Found"}`), preferring a literal path over one with variables;
- checks JWTs as the JWT authorizer does: RS256 signature against the issuer's JWKS (found
  by OIDC discovery), `iss`, `aud` (or `client_id`), `exp`, `nbf`; missing or bad:
  `401 {"message":"Unauthorized"}`; none of the route's scopes: `403 {"message":"Forbidden"}`;
- builds the payload-2.0 event (`local.events`) and invokes the function's environment;
- turns the answer back into HTTP as API Gateway does (status, headers, cookies, base64
  bodies; a plain object becomes a 200 JSON answer); a handler that raises or times out gives
  `500 {"message":"Internal Server Error"}` and its traceback in the function's log;
- a function with no environment free (`local.functions`: all busy for the whole wait) gets
  the same 500, as API Gateway answers when Lambda throttles the function;
- refuses what it cannot read (a malformed request line, a bad `Content-Length`) with
  `400 {"message":"Bad Request"}`, and a body over 10 MB with 413, as JSON.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import jwt
import requests

from local.console import LineWriter, stderr_line
from local.events import http_api_event
from local.functions import FunctionCrashed, FunctionPool, FunctionThrottled, FunctionTimeout
from local.serving import HttpRequest, HttpResponse, HttpService, json_response, loopback_session
from local.template import Route, Template

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's own payload limit
_NOT_FOUND = (404, {"message": "Not Found"})
_UNAUTHORIZED = (401, {"message": "Unauthorized"})
_FORBIDDEN = (403, {"message": "Forbidden"})
_INTERNAL = (500, {"message": "Internal Server Error"})
# Refusals (a request the gateway cannot read) that API Gateway words otherwise than the phrase.
_REFUSALS = {413: "Request Entity Too Large"}


class AuthorizerError(Exception):
    def __init__(self, status: int, body: dict[str, str]) -> None:
        super().__init__(body["message"])
        self.status = status
        self.body = body


class JwtAuthorizer:
    """API Gateway's JWT authorizer for one issuer and its audiences."""

    def __init__(self, issuer: str, audiences: list[str]) -> None:
        self.issuer = issuer
        self.audiences = set(audiences)
        self._keys: dict[str | None, Any] = {}
        self._lock = threading.Lock()
        self._http = loopback_session()

    def claims(self, authorization: str | None) -> dict[str, Any]:
        """The verified claims of the bearer token, or AuthorizerError(401)."""
        if not authorization:
            raise AuthorizerError(*_UNAUTHORIZED)
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else authorization.strip()
        try:
            header = jwt.get_unverified_header(token)
            key = self._key(header.get("kid"))
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                issuer=self.issuer,
                options={"require": ["exp", "iss"], "verify_aud": False},
                leeway=0,
            )
        except (jwt.PyJWTError, KeyError, ValueError, requests.RequestException):
            raise AuthorizerError(*_UNAUTHORIZED) from None
        audiences = claims.get("aud")
        audiences = set(audiences) if isinstance(audiences, list) else {audiences}
        if not (audiences | {claims.get("client_id")}) & self.audiences:
            raise AuthorizerError(*_UNAUTHORIZED)
        return claims

    @staticmethod
    def scopes(claims: Mapping[str, Any]) -> list[str]:
        value = claims.get("scope", claims.get("scp", ""))
        return value.split() if isinstance(value, str) else list(value)

    def _key(self, kid: str | None) -> Any:
        with self._lock:
            if kid not in self._keys:
                self._refresh()  # a new key (rotation) or the first request
            return self._keys[kid]

    def _refresh(self) -> None:
        discovery = self._http.get(f"{self.issuer}/.well-known/openid-configuration", timeout=5)
        discovery.raise_for_status()
        jwks = self._http.get(discovery.json()["jwks_uri"], timeout=5)
        jwks.raise_for_status()
        key_set = jwt.PyJWKSet.from_dict(jwks.json())
        self._keys = {key.key_id: key.key for key in key_set.keys}


class LocalGateway(HttpService):
    """An HTTP server that routes, authorizes and invokes like API Gateway."""

    max_body_bytes = MAX_BODY_BYTES

    def __init__(
        self,
        template: Template,
        pools: Mapping[str, FunctionPool],
        authorizer: JwtAuthorizer,
        *,
        host: str = "127.0.0.1",
        port: int = 3000,
        extra_routes: Mapping[tuple[str, str], Callable[[], tuple[int, Any]]] | None = None,
        log: LineWriter = stderr_line,
    ) -> None:
        super().__init__(host, port)
        self.routes = sorted(template.routes(), key=_specificity)
        self.cors = CorsPolicy.of(template.http_api_cors())
        self.pools = pools
        self.authorizer = authorizer
        self.extra_routes = dict(extra_routes or {})
        self.log = log

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if route.method == method:
                found = route.pattern.match(path)
                if found:
                    return route, found.groupdict()
        return None

    def respond(self, request: HttpRequest) -> HttpResponse:
        """One HTTP request in, one HTTP answer out (CORS as API Gateway adds it). Any
        method or path the template does not declare: `404 {"message":"Not Found"}`."""
        headers = list(request.headers.items())
        origin = request.headers.get("origin")
        if self.cors is not None and request.method == "OPTIONS" and origin:
            requested = request.headers.get("access-control-request-method")
            if requested:  # a preflight: answered by the gateway itself, no route, no token
                return HttpResponse(204, b"", self.cors.preflight_headers(origin))
        response = self._route(request, headers)
        if self.cors is not None:
            # API Gateway ignores the integration's CORS headers and applies its own.
            response.headers = [
                h for h in response.headers if not h[0].lower().startswith("access-control-")
            ]
            if origin:
                response.headers += self.cors.response_headers(origin)
        return response

    def refusal(self, status: int, message: str) -> HttpResponse:
        # API Gateway's own words for a request it cannot take, not ours.
        return json_response(status, {"message": _REFUSALS.get(status, HTTPStatus(status).phrase)})

    def log_request(self, line: str) -> None:
        self.log(f"gateway {line}")

    def _route(self, request: HttpRequest, headers: list[tuple[str, str]]) -> HttpResponse:
        request_id = str(uuid.uuid4())
        extra = self.extra_routes.get((request.method, request.path))
        if extra is not None:
            status, body = extra()
            return _json_answer(status, body, request_id)
        found = self.match(request.method, request.path)
        if found is None:
            return _json_answer(*_NOT_FOUND, request_id)
        route, path_parameters = found
        claims: dict[str, Any] | None = None
        scopes: list[str] | None = None
        if route.authorizer is not None:
            try:
                claims = self.authorizer.claims(request.headers.get("authorization"))
                scopes = self.authorizer.scopes(claims)
                if route.scopes and not set(route.scopes) & set(scopes):
                    raise AuthorizerError(*_FORBIDDEN)
            except AuthorizerError as refused:
                return _json_answer(refused.status, refused.body, request_id)
        event = http_api_event(
            request.method,
            request.path,
            route_key=f"{route.method} {route.path}",
            path_parameters=path_parameters or None,
            query=request.query,
            headers=headers,
            body=request.body if request.body else None,
            claims=claims,
            scopes=scopes,
            source_ip=request.client,
            request_id=request_id,
        )
        try:
            reply = self.pools[route.function].invoke(event, request_id)
        except FunctionThrottled as throttled:
            # API Gateway's answer when Lambda refuses the invocation (a throttle is Lambda's
            # 429 TooManyRequestsException): a 500 with its usual body, nothing for the
            # caller to tell it from any other failure. "If the Lambda API rejects the
            # invocation request, API Gateway returns a 500 error code":
            # https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html ;
            # an HTTP API words the body {"message":"Internal Server Error"}:
            # https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-troubleshooting-lambda.html
            self.log(f"{route.function} {request_id}: throttled: {throttled}")
            return _json_answer(*_INTERNAL, request_id)
        except (FunctionTimeout, FunctionCrashed) as failure:
            self.log(f"{route.function} {request_id}: {failure}")
            return _json_answer(*_INTERNAL, request_id)
        if "result" not in reply:  # an error document (Runtime.Unknown where it had no type)
            # Its traceback is in the function's output, which reaches the console on its
            # own (maybe just after this line).
            error_type = reply.get("errorType", "Runtime.Unknown")
            self.log(f"{route.function} {request_id}: {error_type} (see its traceback)")
            return _json_answer(*_INTERNAL, request_id)
        return _translate(reply["result"], request_id)


@dataclass(frozen=True)
class CorsPolicy:
    """The HttpApi's CorsConfiguration, applied as API Gateway applies it: an allowed origin
    gets the headers (preflight and actual requests alike), any other origin gets none, so
    the browser blocks the call."""

    origins: tuple[str, ...]
    methods: tuple[str, ...]
    headers: tuple[str, ...]
    expose: tuple[str, ...]
    max_age: int | None
    credentials: bool

    @classmethod
    def of(cls, config: Mapping[str, Any] | None) -> CorsPolicy | None:
        if not config:
            return None
        return cls(
            origins=tuple(o for o in config.get("AllowOrigins", []) if o),
            methods=tuple(config.get("AllowMethods", [])),
            headers=tuple(config.get("AllowHeaders", [])),
            expose=tuple(config.get("ExposeHeaders", [])),
            max_age=int(config["MaxAge"]) if "MaxAge" in config else None,
            credentials=bool(config.get("AllowCredentials", False)),
        )

    def allows(self, origin: str) -> bool:
        for allowed in self.origins:
            if allowed == "*" or allowed == origin:
                return True
            if allowed.endswith("*") and origin.startswith(allowed[:-1]):  # e.g. https://*
                return True
        return False

    def _origin_headers(self, origin: str) -> list[tuple[str, str]]:
        wildcard = "*" in self.origins and not self.credentials
        headers = [("Access-Control-Allow-Origin", "*" if wildcard else origin), ("Vary", "Origin")]
        if self.credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return headers

    def preflight_headers(self, origin: str) -> list[tuple[str, str]]:
        if not self.allows(origin):
            return []
        headers = self._origin_headers(origin)
        headers.append(("Access-Control-Allow-Methods", ",".join(self.methods)))
        if self.headers:
            headers.append(
                ("Access-Control-Allow-Headers", ",".join(h.lower() for h in self.headers))
            )
        if self.max_age is not None:
            headers.append(("Access-Control-Max-Age", str(self.max_age)))
        return headers

    def response_headers(self, origin: str) -> list[tuple[str, str]]:
        if not self.allows(origin):
            return []
        headers = self._origin_headers(origin)
        if self.expose:
            headers.append(
                ("Access-Control-Expose-Headers", ",".join(h.lower() for h in self.expose))
            )
        return headers


def _specificity(route: Route) -> tuple[int, int]:
    # API Gateway prefers literal paths, then fewer variables, then greedy ones.
    greedy = route.path.count("+}")
    variables = route.path.count("{")
    return (greedy, variables)


def _json_answer(status: int, body: Any, request_id: str) -> HttpResponse:
    return json_response(status, body, [("apigw-requestid", request_id)])


def _translate(result: Any, request_id: str) -> HttpResponse:
    """A payload-2.0 Lambda answer as API Gateway sends it on."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # No statusCode: API Gateway assumes 200 and JSON of whatever came back.
        return _json_answer(200, result, request_id)
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    headers += [("Set-Cookie", cookie) for cookie in result.get("cookies") or []]
    headers.append(("apigw-requestid", request_id))
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    return HttpResponse(int(result["statusCode"]), data, headers)
