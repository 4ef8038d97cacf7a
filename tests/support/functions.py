"""Load and invoke the real function handlers in-process, as Lambda would, for tests."""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from local.events import http_api_event
from local.issuer import MACHINE_CLIENT_ID
from local.template import ROOT, Template
from tests.support.context import lambda_context
from tests.support.sandbox_control import SandboxControl

MEMBER = "80000000110"  # the member the tokens speak for by default
OTHER = "80000000001"  # another seeded collector
READ = "offers/state.read"
WRITE = "offers/state.write"
M2M = "offers/state.m2m"
# The machine client the test stacks allow (MachineClientIds), as the local stack does.
MACHINE_CLIENT = MACHINE_CLIENT_ID
SAVE = {"states": [{"name": "SAVE", "value": "SAVED"}]}
OPT_IN = {"states": [{"name": "OPT_IN", "value": "OPTED_IN"}]}


def load_handler_module(template: Template, logical_id: str) -> ModuleType:
    """The function's module, imported afresh under its own name (as a new container)."""
    props = template.function_properties(logical_id)
    module_name, _ = props["Handler"].rsplit(".", 1)
    path = ROOT / props["CodeUri"] / f"{module_name}.py"
    unique = f"_fn_{logical_id}_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(unique, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Function:
    logical_id: str
    module: ModuleType
    timeout: float
    memory: int

    def invoke(self, event: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """The handler's answer to `event`, in an invocation Lambda gives `timeout` seconds
        (the function's Timeout unless said)."""
        context = lambda_context(
            self.logical_id, self.memory, self.timeout if timeout is None else timeout
        )
        return self.module.lambda_handler(event, context)

    def call(
        self, event: dict[str, Any], *, timeout: float | None = None
    ) -> tuple[int, dict[str, str], Any]:
        """(status, headers, parsed JSON body); `timeout` as `invoke`."""
        answer = self.invoke(event, timeout=timeout)
        body = answer.get("body")
        return answer["statusCode"], answer.get("headers", {}), json.loads(body) if body else None


def event(
    method: str,
    path: str,
    *,
    query: Any = None,
    headers: dict[str, str] | None = None,
    body: Any = None,
    collector: str | None = MEMBER,
    scopes: tuple[str, ...] = (READ, WRITE),
    claims: dict[str, Any] | None = None,
    route_key: str | None = None,
    path_parameters: dict[str, str] | None = None,
    authorized: bool = True,
) -> dict[str, Any]:
    """An event as API Gateway sends it after its JWT authorizer let the token through.

    `collector` is the member claim (None for a token of the machine client MACHINE_CLIENT)."""
    all_headers = {"user-agent": "pytest", **(headers or {})}
    if body is not None and not isinstance(body, str | bytes):
        body = json.dumps(body)
        all_headers.setdefault("content-type", "application/json")
    token_claims = None
    if authorized:
        token_claims = {"sub": "member-1" if collector else "partner-backend@clients"}
        if collector is not None:
            token_claims["collector_number"] = collector
        else:
            token_claims["client_id"] = MACHINE_CLIENT
        token_claims["scope"] = " ".join(scopes)
        token_claims.update(claims or {})
    return http_api_event(
        method,
        path,
        route_key=route_key or f"{method} {path}",
        path_parameters=path_parameters,
        query=query,
        headers=all_headers,
        body=body,
        claims=token_claims,
        scopes=scopes if authorized else None,
    )


def machine(number: str, *scopes: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """`event` keywords of a machine token (no member claim) with `scopes`, naming collector
    `number` in its Collector-Number header (after any other `headers`)."""
    return {
        "headers": {**(headers or {}), "collector-number": number},
        "collector": None,
        "scopes": scopes,
    }


def offer_event(offer_id: str, body: Any, **kwargs: Any) -> dict[str, Any]:
    """`PUT /v1/offers/{offerId}/states`."""
    return event(
        "PUT",
        f"/v1/offers/{offer_id}/states",
        body=body,
        route_key="PUT /v1/offers/{offerId}/states",
        path_parameters={"offerId": offer_id},
        **kwargs,
    )


def assert_error(answer: tuple[int, dict[str, str], Any], status: int, code: str) -> Any:
    """`answer` (from `Function.call`) is the error `code` with HTTP `status`; its body."""
    got, _, body = answer
    assert (got, body["error"]["code"]) == (status, code), body
    return body


def assert_nothing_upstream(sandbox_control: SandboxControl) -> None:
    """Not one call reached AIR MILES (any endpoint, the token endpoint included)."""
    assert sum(sandbox_control.calls().values()) == 0


def assert_refused(
    answer: tuple[int, dict[str, str], Any], status: int, code: str, sandbox_control: SandboxControl
) -> Any:
    """`answer` is the error `code` with HTTP `status`, given before any call to AIR MILES
    (`assert_error`, `assert_nothing_upstream`); its body."""
    body = assert_error(answer, status, code)
    assert_nothing_upstream(sandbox_control)
    return body


EVENTS_DIR = Path(ROOT / "events")
