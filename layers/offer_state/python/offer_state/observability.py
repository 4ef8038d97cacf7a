"""Logger, Tracer and Metrics shared by both functions, and the upstream call telemetry.

Collector numbers are never logged in clear: code logs masked numbers only, and the log
formatter masks any 11-digit run that slips through (an exception message, a header).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit, single_metric

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer
    from aws_lambda_powertools.logging.types import LogRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

# A Lambda handler: the event (JSON) and the invocation's context in, the answer (JSON) out.
Handler = Callable[[dict[str, Any], "LambdaContext"], dict[str, Any]]

# Standing alone: 11 digits inside an id or a hex digest are not a collector number.
_ELEVEN_DIGITS = re.compile(r"(?<![0-9A-Za-z.])\d{7}(\d{4})(?![0-9A-Za-z.])")


class MaskingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter, with 11-digit numbers masked as `*******0110`."""

    def serialize(self, log: LogRecord) -> str:
        return _ELEVEN_DIGITS.sub(r"*******\1", super().serialize(log))


class LazyTracer:
    """Powertools Tracer, built at the first invocation, and only where X-Ray is on.

    Why not `Tracer()` at import, as usual: it loads the X-Ray SDK (and botocore with it) even
    when tracing is off, about a third of the functions' import time; and it patches every
    library the SDK knows, where only requests (AIR MILES) and botocore (AWS) are called here.
    Built at the first invocation, it still patches both before any client exists (the
    service creates its clients on first use)."""

    def capture_lambda_handler(self, handler: Handler) -> Handler:
        traced: Handler | None = None

        @functools.wraps(handler)
        def wrapper(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
            nonlocal traced
            if traced is None:
                # Never the answer body as trace metadata (Powertools' default): it names a
                # collector's offers and states, and X-Ray is not where they are kept.
                traced = (
                    _tracer().capture_lambda_handler(handler, capture_response=False)
                    if tracing_on()
                    else handler
                )
            return traced(event, context)

        return wrapper

    def prepare(self) -> None:
        """Build the tracer now, where tracing is on, instead of at the first invocation
        (before a SnapStart snapshot: restored environments then start with it). Building it
        imports the X-Ray SDK, patches requests and botocore, and creates the SDK's UDP
        socket, which is never connected (each segment goes out with `sendto`): nothing in
        it goes stale in a snapshot."""
        if tracing_on():
            _tracer()


def tracing_on() -> bool:
    """As Powertools decides: in Lambda (not `sam local`), unless POWERTOOLS_TRACE_DISABLED."""
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true")
    return (
        bool(os.environ.get("LAMBDA_TASK_ROOT"))
        and not os.environ.get("AWS_SAM_LOCAL")
        and not disabled
    )


@functools.cache  # one Tracer for every handler wrapped, built by `prepare` or the first call
def _tracer() -> Tracer:
    from aws_lambda_powertools import Tracer  # the X-Ray SDK: 335 ms of CPU at 0.15 core

    return Tracer(patch_modules=("requests", "botocore"))


logger = Logger(logger_formatter=MaskingFormatter())
tracer = LazyTracer()
metrics = Metrics()


def count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def dimensioned(metric: str, unit: MetricUnit, amount: float, dimensions: dict[str, str]) -> None:
    """One metric with its own dimensions (one EMF line): per endpoint, per state."""
    with single_metric(
        name=metric,
        unit=unit,
        value=amount,
        namespace=metrics.namespace,
        default_dimensions=metrics.default_dimensions,
    ) as single:
        for key, dimension in dimensions.items():
            single.add_dimension(name=key, value=dimension)


class UpstreamTelemetry:
    """The client's `CallObserver`: latency and errors per AIR MILES endpoint, token fetches;
    and its `TokenObserver`: the token store (offer_state.auth), never naming a token.

    Also keeps the time spent waiting on AIR MILES in this invocation, so that benchmarks can
    subtract it from the handler's time.
    """

    def __init__(self) -> None:
        self.seconds_in_calls = 0.0

    def upstream_call(
        self, endpoint: str, status: int | None, seconds: float, attempt: int
    ) -> None:
        self.seconds_in_calls += seconds
        dimensioned(
            "UpstreamLatency", MetricUnit.Milliseconds, seconds * 1000, {"endpoint": endpoint}
        )
        count("UpstreamCalls")
        if endpoint == "token":
            count("TokenFetches")
        if status is None or status >= 500:
            # Connection failures count as 5xx: for the alarm, AIR MILES was not there.
            count("Upstream5xx")
            dimensioned("UpstreamErrors", MetricUnit.Count, 1, {"endpoint": endpoint})
        elif status >= 400:
            dimensioned("UpstreamErrors", MetricUnit.Count, 1, {"endpoint": endpoint})
        if attempt > 1:
            count("UpstreamRetries")

    def token_store_failed(self, operation: str, reason: str) -> None:
        count("TokenStoreFailures")
        logger.warning("token store failed", extra={"operation": operation, "reason": reason})

    def token_fallback(self, reason: str) -> None:
        count("TokenFallbackFetches")
        logger.warning(
            "no stored token: this environment fetches its own", extra={"reason": reason}
        )


def server_error_answered(function: str, route: str, status: int) -> None:
    """One 5xx answer given by our code, as `Handled5xx` twice: per function (the alarms
    that roll a deployment back divide it by the function's invocations) and per route and
    status (dashboards). An alarm names a metric's dimensions exactly, hence the two."""
    dimensioned("Handled5xx", MetricUnit.Count, 1, {"function": function})
    dimensioned("Handled5xx", MetricUnit.Count, 1, {"route": route, "status": str(status)})


def state_changed(name: str, value: str) -> None:
    dimensioned("StateChanges", MetricUnit.Count, 1, {"name": name, "value": value})
