"""The `context` a handler gets, for the tests that call handlers in-process: the runtime
interface client's own `LambdaContext` (the class Lambda's Python runtime hands handlers),
with what Lambda takes from the function's settings."""

from __future__ import annotations

import time
import uuid

from awslambdaric.lambda_context import LambdaContext


def lambda_context(function_name: str, memory: int, timeout_seconds: float) -> LambdaContext:
    """A context for an invocation that starts now and may last `timeout_seconds`."""
    deadline_ms = int((time.time() + timeout_seconds) * 1000)
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
    context = LambdaContext(str(uuid.uuid4()), None, None, deadline_ms, arn)
    context.function_name = function_name
    context.memory_limit_in_mb = str(memory)  # as Lambda's: from an environment variable
    context.function_version = "$LATEST"
    context.log_group_name = f"/aws/lambda/{function_name}"
    return context
