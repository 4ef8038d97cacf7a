"""Powertools' Event Handler as the functions use it: the HTTP API resolver, its responses and
its parameter declarations, without the resolvers and event classes they never use; and the
one module that relies on Powertools internals, each kept because a measurement shows it pays
(`tests/unit/test_event_handler_imports.py` and `tests/unit/test_event_handler_internals.py`
fail when a Powertools upgrade breaks one).

Deferred package inits. `aws_lambda_powertools.event_handler`'s `__init__` imports every
resolver it has (AppSync with asyncio, Bedrock agents, VPC Lattice, Lambda function URLs ...),
and `aws_lambda_powertools.utilities.data_classes`' `__init__` the classes of some thirty event
sources. The HTTP API resolver needs neither. So before anything imports them, those two
packages are registered with their `__init__` deferred: a name the `__init__` takes from one of
its own submodules is imported from that submodule when first asked for, and asking for any
other name runs the whole `__init__` as usual. Nothing else changes: every module and class is
Powertools' own, and a process that imported the packages before keeps them as they are.
Measured (2026-12-07, get-state's `import app` in a fresh process at 0.15 of a core, 11 runs
each, medians): 283 ms of CPU (1,867 ms wall) with the deferral, 317 ms (2,100 ms) without.
That is a cold start without SnapStart; with SnapStart (the default) the init runs before the
snapshot and no request waits for it.

Import the Event Handler's names from here (the functions and `offer_state.api` do).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import sys
import threading
from typing import Any

from pydantic import BaseModel

DEFERRED_PACKAGES = (
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.data_classes",
)


def reexports(package: str, init_source: str) -> dict[str, str]:
    """{name: the module it comes from} for each `from … import …` of a package `__init__`."""
    found: dict[str, str] = {}
    for node in ast.parse(init_source).body:
        if isinstance(node, ast.ImportFrom):
            module = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            found.update({alias.asname or alias.name: module for alias in node.names})
    return found


def defer_package_init(package: str) -> None:
    """Registers `package` with its `__init__` deferred (see the module docstring); nothing to
    do when it is imported already."""
    if package in sys.modules:
        return
    spec = importlib.util.find_spec(package)
    if spec is None or spec.loader is None or spec.origin is None:
        return
    module = importlib.util.module_from_spec(spec)
    with open(spec.origin, encoding="utf-8") as source:
        origins = reexports(package, source.read())
    folder = os.path.dirname(spec.origin)
    submodules = {entry.removesuffix(".py") for entry in os.listdir(folder)}
    # The whole `__init__` runs at most once, and a thread asking meanwhile waits for it, as
    # the import lock makes it wait for a real package (`__getattr__` stays until it is done).
    whole_init = threading.RLock()
    running: list[bool] = []

    def __getattr__(name: str) -> Any:
        origin = origins.get(name)
        if origin is None and name in submodules:
            # `from package import submodule`: not an attribute yet, so the import system
            # imports the submodule itself, as it would for the real package.
            raise AttributeError(name)
        if origin is not None:
            value = getattr(importlib.import_module(origin), name)
            setattr(module, name, value)
            return value
        with whole_init:  # anything else: the package as Powertools wrote it
            if name in module.__dict__:
                return module.__dict__[name]  # the whole `__init__` ran meanwhile
            if running:  # asked by that `__init__` itself: not there yet, as for any module
                raise AttributeError(name)
            running.append(True)
            try:
                spec.loader.exec_module(module)  # type: ignore[union-attr]
            finally:
                running.clear()
            module.__dict__.pop("__getattr__", None)
        return getattr(module, name)

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[package] = module
    parent, _, child = package.rpartition(".")
    setattr(importlib.import_module(parent), child, module)
    # A name that is also a submodule's (`from .event_source import event_source`): the real
    # `__init__` binds the name after importing the submodule, so the name wins; bound now,
    # it does here too, whatever imports the submodule later.
    for name in sorted(set(origins) & submodules):
        setattr(module, name, getattr(importlib.import_module(origins[name]), name))


def _defer_unused_inits() -> None:
    for package in DEFERRED_PACKAGES:
        defer_package_init(package)


_defer_unused_inits()

# The names the functions and the API use, from the modules that define them.
from aws_lambda_powertools.event_handler.api_gateway import (  # noqa: E402
    APIGatewayHttpResolver,
    Response,
)
from aws_lambda_powertools.event_handler.openapi.compat import ModelField  # noqa: E402
from aws_lambda_powertools.event_handler.openapi.exceptions import (  # noqa: E402
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query  # noqa: E402

__all__ = [
    "APIGatewayHttpResolver",
    "Body",
    "Header",
    "Path",
    "Query",
    "RequestValidationError",
    "Response",
    "declared_query_names",
]


def declared_query_names(app: APIGatewayHttpResolver) -> set[str]:
    """The query parameters declared by the route `app` is resolving (in a middleware): its
    `Query` parameters, and the fields (by alias) of a model it takes from the query string.

    Powertools internal: the matched route (`app.context["_route"]`; the public `app.request`
    names its path, not its parameters) and its `dependant`, which Powertools' request
    validation has built by then. The public source, the parameters of the OpenAPI document
    (`app.get_openapi_schema()`), would cost the first request with a query string of an
    environment without SnapStart 100 ms of CPU more than the validators it builds anyway
    (692 ms wall; get-state at 0.15 of a core, 7 runs, medians, 2026-12-07)."""
    route = app.context["_route"]
    return set().union(*(_names(param) for param in route.dependant.query_params))


def _names(param: ModelField) -> set[str]:
    """A query parameter's name, or the names (aliases) of the fields of its model."""
    annotation = param.field_info.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {field.alias or name for name, field in annotation.model_fields.items()}
    return {param.alias}
