"""Logger, Tracer and Metrics shared by both functions, and the upstream call telemetry.

Collector numbers are never logged in clear: code logs masked numbers only, and the log
formatter masks any 11-digit run that slips through (an exception message, a header).
"""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit, single_metric

# Standing alone: 11 digits inside an id or a hex digest are not a collector number.
_ELEVEN_DIGITS = re.compile(r"(?<![0-9A-Za-z.])\d{7}(\d{4})(?![0-9A-Za-z.])")


class MaskingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter, with 11-digit numbers masked as `*******0110`."""

    def serialize(self, log: dict[str, Any]) -> str:
        return _ELEVEN_DIGITS.sub(r"*******\1", super().serialize(log))


logger = Logger(logger_formatter=MaskingFormatter())
tracer = Tracer()
metrics = Metrics()


def count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def _dimensioned(metric: str, unit: MetricUnit, amount: float, dimensions: dict[str, str]) -> None:
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
    """The client's `CallObserver`: latency and errors per AIR MILES endpoint, token fetches.

    Also keeps the time spent waiting on AIR MILES in this invocation, so that benchmarks can
    subtract it from the handler's time.
    """

    def __init__(self) -> None:
        self.seconds_in_calls = 0.0

    def upstream_call(
        self, endpoint: str, status: int | None, seconds: float, attempt: int
    ) -> None:
        self.seconds_in_calls += seconds
        _dimensioned(
            "UpstreamLatency", MetricUnit.Milliseconds, seconds * 1000, {"endpoint": endpoint}
        )
        count("UpstreamCalls")
        if endpoint == "token":
            count("TokenFetches")
        if status is None or status >= 500:
            # Connection failures count as 5xx: for the alarm, AIR MILES was not there.
            count("Upstream5xx")
            _dimensioned("UpstreamErrors", MetricUnit.Count, 1, {"endpoint": endpoint})
        elif status >= 400:
            _dimensioned("UpstreamErrors", MetricUnit.Count, 1, {"endpoint": endpoint})
        if attempt > 1:
            count("UpstreamRetries")


def state_changed(name: str, value: str) -> None:
    _dimensioned("StateChanges", MetricUnit.Count, 1, {"name": name, "value": value})
