"""`offer_state.event_handler` defers the `__init__` of Powertools' Event Handler and event data
classes: the functions load only the resolver they use, and every name of those packages still
means what Powertools says it means. Each check runs in a fresh interpreter (the deferral acts
on sys.modules, once per process)."""

from __future__ import annotations

import pytest

from local.template import ROOT
from tests.support.fresh import run_fresh


@pytest.mark.parametrize("function", ["get_state", "update_state"])
def test_a_function_loads_no_resolver_or_event_class_it_does_not_use(function: str):
    loaded = run_fresh(
        "import json, sys, app; print(json.dumps(sorted(sys.modules)))",
        cwd=ROOT / "functions" / function,
    )
    assert "asyncio" not in loaded
    assert not [m for m in loaded if m.startswith("aws_lambda_powertools.event_handler.appsync")]
    assert "aws_lambda_powertools.event_handler.bedrock_agent" not in loaded
    event_classes = [m for m in loaded if m.startswith("aws_lambda_powertools.utilities.data_cl")]
    assert "aws_lambda_powertools.utilities.data_classes.api_gateway_proxy_event" in event_classes
    assert "aws_lambda_powertools.utilities.data_classes.sqs_event" not in event_classes
    assert len(event_classes) < 10  # of about 35


_IDENTITIES = """
import importlib, json, sys
{first}
import offer_state.event_handler as ours


def identity(value):
    return ":".join([type(value).__name__, getattr(value, "__module__", "") or "",
                     getattr(value, "__qualname__", "") or ""])


names = {{}}
for package in ours.DEFERRED_PACKAGES:
    module = sys.modules[package]
    with open(importlib.util.find_spec(package).origin) as source:
        listed = ours.reexports(package, source.read())
    names[package] = {{name: identity(getattr(module, name)) for name in sorted(listed)}}
print(json.dumps(names))
"""


def test_every_name_of_the_deferred_packages_is_powertools_own():
    # Every name an `__init__` re-exports, reached through the deferred package, is the object
    # the real package (imported whole, in another process) gives under that name.
    deferred = run_fresh(_IDENTITIES.format(first=""))
    real = run_fresh(
        _IDENTITIES.format(
            first="import aws_lambda_powertools.event_handler, "
            "aws_lambda_powertools.utilities.data_classes"
        )
    )
    assert (
        set(deferred)
        == set(real)
        == {
            "aws_lambda_powertools.event_handler",
            "aws_lambda_powertools.utilities.data_classes",
        }
    )
    for package, names in real.items():
        assert len(names) > 15, package  # the parser found the re-exports
        assert deferred[package] == names, package


def test_a_name_that_is_not_a_reexport_runs_the_whole_init():
    loaded = run_fresh(
        """
import json, sys
import offer_state.event_handler
import aws_lambda_powertools.event_handler as handler
before = "asyncio" in sys.modules
names = handler.__all__  # defined by the __init__ itself
from aws_lambda_powertools.event_handler import content_types  # a submodule
print(json.dumps([before, "asyncio" in sys.modules, "AppSyncResolver" in names,
                  content_types.__name__]))
"""
    )
    assert loaded == [False, True, True, "aws_lambda_powertools.event_handler.content_types"]


def test_a_package_imported_before_is_left_as_it_is():
    loaded = run_fresh(
        """
import json, sys
import aws_lambda_powertools.event_handler as real
import offer_state.event_handler
print(json.dumps([sys.modules["aws_lambda_powertools.event_handler"] is real,
                  "__getattr__" in vars(real)]))
"""
    )
    assert loaded == [True, False]


def test_reexports_reads_plain_parenthesized_relative_and_aliased_imports():
    source = (
        "from .alb_event import ALBEvent\n"
        "from x.api import (\n    A,\n    B as C,\n)\n"
        "from .s3 import S3Event, S3Other\n"
        "__all__ = ['ALBEvent']\n"
    )
    assert __import__("offer_state.event_handler").event_handler.reexports("pkg", source) == {
        "ALBEvent": "pkg.alb_event",
        "A": "x.api",
        "C": "x.api",
        "S3Event": "pkg.s3",
        "S3Other": "pkg.s3",
    }


def test_a_name_shared_with_a_submodule_means_what_the_real_package_says():
    # `from .event_source import event_source`: the function, even when something imported
    # the submodule of the same name first.
    loaded = run_fresh(
        """
import json
import offer_state.event_handler
import aws_lambda_powertools.utilities.data_classes.event_source
from aws_lambda_powertools.utilities.data_classes import event_source
print(json.dumps([type(event_source).__name__]))
"""
    )
    assert loaded == ["function"]


def test_threads_asking_for_the_whole_init_at_once_all_get_it():
    loaded = run_fresh(
        """
import json, threading
import offer_state.event_handler
import aws_lambda_powertools.event_handler as handler
start, seen = threading.Barrier(8), []
def ask():
    start.wait()
    try:
        seen.append(len(handler.__all__))
    except AttributeError as error:
        seen.append(repr(error))
threads = [threading.Thread(target=ask) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps(seen))
"""
    )
    assert len(loaded) == 8
    assert len(set(loaded)) == 1 and isinstance(loaded[0], int), loaded


@pytest.mark.parametrize(
    "package",
    ["aws_lambda_powertools.event_handler", "aws_lambda_powertools.utilities.data_classes"],
)
def test_the_pinned_inits_are_only_reexports_and_the_parser_reads_them_all(package: str):
    # The deferral holds for these files only while they do nothing but re-export names of
    # their submodules, which this checks (a Powertools upgrade must pass it again).
    import ast
    import importlib.util

    from offer_state.event_handler import reexports

    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None
    origin = spec.origin
    with open(origin, encoding="utf-8") as source:
        text = source.read()
    tree = ast.parse(text)
    imported = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            module = f"{package}.{node.module}" if node.level else node.module
            imported.update({alias.asname or alias.name: module for alias in node.names})
        else:  # only the docstring and `__all__` besides the imports
            assert isinstance(node, ast.Expr | ast.Assign), ast.dump(node)[:80]
    assert reexports(package, text) == imported
