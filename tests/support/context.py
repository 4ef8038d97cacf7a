"""The `context` a handler gets, for the tests that call handlers in-process: the runtime
interface client's own `LambdaContext` (the class Lambda's Python runtime hands handlers),
with what Lambda takes from the function's settings, made as `make bench` makes it."""

from __future__ import annotations

from awslambdaric.lambda_context import LambdaContext

from local.bench_child import lambda_context as _bench_context


def lambda_context(function_name: str, memory: int, timeout_seconds: float) -> LambdaContext:
    """A context for an invocation that starts now and may last `timeout_seconds`."""
    context: LambdaContext = _bench_context(function_name, memory, timeout_seconds)
    return context
