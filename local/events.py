"""API Gateway HTTP API (payload 2.0) events, built the way API Gateway builds them.

Used by the local gateway for every request and by the tests for events made in code, so
both hand the functions exactly what Lambda would; `sample_event` reads one of the sample
events in events/ for the commands that replay one many times (`make bench`, `make tokens`).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
SAMPLE_EVENTS = Path(__file__).resolve().parent.parent / "events"


def sample_event(name: str) -> dict[str, Any]:
    """events/<name>.json without its `idempotency-key` header: a key would turn the repeats of
    a PUT into replays, where each is meant to be a change of its own."""
    event: dict[str, Any] = json.loads((SAMPLE_EVENTS / f"{name}.json").read_text())
    event["headers"].pop("idempotency-key", None)
    return event


def http_api_event(
    method: str,
    path: str,
    *,
    route_key: str,
    path_parameters: Mapping[str, str] | None = None,
    query: str | Iterable[tuple[str, str]] | None = None,
    headers: Iterable[tuple[str, str]] | Mapping[str, str] | None = None,
    body: bytes | str | None = None,
    claims: Mapping[str, Any] | None = None,
    scopes: Iterable[str] | None = None,
    source_ip: str = "127.0.0.1",
    request_id: str | None = None,
    time_epoch_ms: int | None = None,
) -> dict[str, Any]:
    """One event as API Gateway sends it to a Lambda integration (payload format 2.0)."""
    raw_query = query if isinstance(query, str) else urlencode(list(query or []))
    joined, cookies = _headers_and_cookies(headers)
    epoch_ms = time_epoch_ms if time_epoch_ms is not None else int(time.time() * 1000)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": joined,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": joined.get("host", "127.0.0.1"),
            "domainPrefix": joined.get("host", "127.0.0.1").split(".")[0],
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": request_id or str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime(
                "%d/%b/%Y:%H:%M:%S +0000"
            ),
            "timeEpoch": epoch_ms,
        },
        "isBase64Encoded": False,
    }
    # The optional parts: each only when there is something to put in it.
    if cookies:
        event["cookies"] = cookies
    params = _joined(parse_qsl(raw_query, keep_blank_values=True))  # repeated keys, commas
    if params:
        event["queryStringParameters"] = params
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if claims is not None:
        event["requestContext"]["authorizer"] = _jwt_authorizer(claims, scopes)
    if body is not None:
        event.update(_body(body, joined.get("content-type", "")))
    return event


def _headers_and_cookies(
    headers: Iterable[tuple[str, str]] | Mapping[str, str] | None,
) -> tuple[dict[str, str], list[str]]:
    """Headers as API Gateway passes them, names lower-cased and a repeated one's values joined
    by commas; the Cookie headers apart, one entry per cookie."""
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or [])
    others: list[tuple[str, str]] = []
    cookies: list[str] = []
    for name, value in pairs:
        if name.lower() == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
        else:
            others.append((name.lower(), value))
    return _joined(others), cookies


def _joined(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Values of a repeated name joined by commas, as API Gateway joins headers and queries."""
    joined: dict[str, str] = {}
    for name, value in pairs:
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def _jwt_authorizer(claims: Mapping[str, Any], scopes: Iterable[str] | None) -> dict[str, Any]:
    return {
        "jwt": {
            # The authorizer passes claims as strings (lists as "[a b]").
            "claims": {k: _claim_text(v) for k, v in claims.items()},
            "scopes": list(scopes) if scopes else None,
        }
    }


def _body(body: bytes | str, content_type: str) -> dict[str, Any]:
    """Text as it is; anything else (or text that is not UTF-8) in base64, flagged so."""
    data = body.encode() if isinstance(body, str) else body
    if content_type.startswith(_TEXT_TYPES) and _is_utf8(data):
        return {"body": data.decode()}
    return {"body": base64.b64encode(data).decode(), "isBase64Encoded": True}


def _claim_text(value: Any) -> str:
    if isinstance(value, list):
        return "[" + " ".join(str(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True
