"""Deadlines: the instant a call must be done by, and the two of one Lambda invocation.

An invocation has a hard end (Lambda's Timeout: `context.get_remaining_time_in_millis()`).
It works to two deadlines before it:

- `upstream`: AIR MILES (every exchange, the token's included, with its retries and waits)
  ends by then. It is the end minus a reserve, and never later than the upstream budget
  (`AIRMILES_TOTAL_BUDGET`) after the first exchange with AIR MILES began (`begin`). The
  budget is for waiting on AIR MILES: it does not start at the invocation's start, whose
  first moments may be CPU work (a cold environment building its AWS clients, at a 256 MB
  function's 0.15 of a vCPU) that the hard end alone bounds.
- `final`: every AWS call ends by then; a short margin after it is left for answering. The
  reserve between the two is for the AWS calls after AIR MILES (the audit outcome, the
  idempotency record).

Without a Lambda context (a test, a script) the end is the budget plus the reserve.

AWS calls are bounded here (`bound_by_invocation`): a botocore attempt starts only when its
worst case (its connect and read timeouts) ends by `final`, and a retry only when botocore's
backoff sleep fits as well, so that no AWS call outlives the invocation whatever botocore's
own retries would do. Before AIR MILES is done with, an AWS attempt (the secret, the
write-ahead audit item, the idempotency lock) also starts only before `upstream`, and only
when it leaves the time of one more attempt for the outcome's write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError

if TYPE_CHECKING:
    # botocore ships no types (the boto3 stubs are per service, offer_state.service): these
    # names document what botocore hands over, and check as Any.
    from botocore.awsrequest import AWSResponse
    from botocore.client import BaseClient
    from botocore.model import OperationModel

    # What botocore's `needs-retry` event passes as `response`: (HTTP answer, parsed answer).
    BotocoreAnswer = tuple[AWSResponse, dict[str, Any]]

ClientT = TypeVar("ClientT", bound="BaseClient")

# After the last AWS call: building the answer, Powertools' metrics and log lines (a few ms).
ANSWER_SECONDS = 0.1
# The AWS clients' limits (botocore Config): one attempt ends within connect + read. Small,
# since DynamoDB and Secrets Manager answer in tens of milliseconds inside a region, and one
# attempt must fit in the reserve after the AIR MILES call (see `InvocationDeadline`).
AWS_CONNECT_SECONDS = 0.5
AWS_READ_SECONDS = 1.0
AWS_MAX_ATTEMPTS = 3
AWS_ATTEMPT_SECONDS = AWS_CONNECT_SECONDS + AWS_READ_SECONDS


@dataclass(frozen=True)
class Deadline:
    """The instant (on `clock`, monotonic) by which a call must be done."""

    at: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    def remaining(self) -> float:
        return self.at - self.clock()

    def begin(self) -> None:
        """An exchange with AIR MILES begins (see `UpstreamDeadline`): a fixed instant stays."""
        return None


@dataclass(frozen=True)
class UpstreamDeadline(Deadline):
    """`budget` seconds from the first `begin()`, and never later than `at`. Until then the
    budget has not started: `remaining()` is the whole budget, or less when `at` is nearer.
    (Frozen like `Deadline`; `begin` sets its one field that changes, once.)"""

    budget: float = 0.0
    begun_at: float | None = None

    def remaining(self) -> float:
        now = self.clock()
        start = now if self.begun_at is None else self.begun_at
        return min(start + self.budget, self.at) - now

    def begin(self) -> None:
        if self.begun_at is None:
            object.__setattr__(self, "begun_at", self.clock())


class InvocationDeadline:
    """One invocation's deadlines (the module docstring): `upstream`, then `final`."""

    def __init__(self, upstream: Deadline, final: Deadline) -> None:
        self.upstream = upstream
        self.final = final
        self.started = upstream.clock()
        self._finishing = False

    @classmethod
    def start(
        cls,
        remaining_ms: int | None,
        *,
        budget: float,
        reserve: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> InvocationDeadline:
        """From the time Lambda leaves the invocation (None: no Lambda context), the upstream
        budget and the reserve kept after AIR MILES for the audit outcome and the answer."""
        now = clock()
        end = now + (remaining_ms / 1000 if remaining_ms is not None else budget + reserve)
        return cls(
            UpstreamDeadline(end - reserve, clock, budget=budget),
            Deadline(end - ANSWER_SECONDS, clock),
        )

    def timings(self) -> dict[str, int]:
        """How far the invocation is (ms): spent since it started, and left before each
        deadline (negative once past it). For the log line of a failed request."""
        return {
            "elapsedMs": round((self.upstream.clock() - self.started) * 1000),
            "upstreamLeftMs": round(self.upstream.remaining() * 1000),
            "finalLeftMs": round(self.final.remaining() * 1000),
        }

    def finishing(self) -> None:
        """AIR MILES is done with (answered, failed or was never called): from now on AWS
        calls may use the reserve, up to `final`."""
        self._finishing = True

    def fits_aws_attempt(self, seconds: float, *, after: float = 0.0) -> bool:
        """Whether an AWS attempt that may take `seconds`, started `after` seconds from now,
        is allowed (the module docstring)."""
        if self._finishing:
            return self.final.remaining() >= after + seconds
        # Before AIR MILES: not after its deadline, and one attempt is left for the outcome.
        return self.upstream.remaining() > after and self.final.remaining() >= after + 2 * seconds

    def leaves_time_for_a_change(self, upstream_seconds: float) -> bool:
        """Whether a change may still be sent: `upstream_seconds` left for AIR MILES, and time
        for the AWS write that must come first (its write-ahead audit item, or its idempotency
        lock) with one attempt left for its outcome."""
        return self.upstream.remaining() >= upstream_seconds and self.fits_aws_attempt(
            AWS_ATTEMPT_SECONDS
        )

    @contextmanager
    def current(self) -> Iterator[InvocationDeadline]:
        """This invocation's deadline for the AWS clients bound by it, for the duration."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)


# A context variable rather than an argument: the AWS calls are made by Powertools (the
# secret, the idempotency records) as much as by our code, and it is per thread.
_CURRENT: ContextVar[InvocationDeadline | None] = ContextVar("offer_state_invocation", default=None)


class AwsTimeLimitReached(BotoCoreError):  # type: ignore[misc]  # botocore has no types
    fmt = "Not enough time is left in this invocation for an AWS call to end in time."


def bound_by_invocation(client: ClientT, attempt_seconds: float = AWS_ATTEMPT_SECONDS) -> ClientT:
    """Makes the botocore `client` respect the current invocation's deadline (see the module
    docstring); outside an invocation it is unchanged. An attempt refused raises a BotoCoreError
    (`AwsTimeLimitReached`), which every caller already treats as the service failing."""

    def before_attempt(**_: object) -> None:
        invocation = _CURRENT.get()
        if invocation is not None and not invocation.fits_aws_attempt(attempt_seconds):
            raise AwsTimeLimitReached()

    def needs_retry(
        attempts: int,
        response: BotocoreAnswer | None = None,
        caught_exception: Exception | None = None,
        operation: OperationModel | None = None,
        **_: object,
    ) -> None:
        invocation = _CURRENT.get()
        if invocation is None or (caught_exception is None and not _failed(response)):
            return None  # botocore decides (an answer that did not fail is never retried)
        # The longest sleep botocore's standard mode may take before the next attempt: after
        # no answer (a connection error, a timeout) rand * 0.05 * 2**(attempts-1) s; after an
        # error answer up to 2**(attempts-1) s (throttling), and 5 s more with
        # x-amz-retry-after.
        scale = 0.05 if caught_exception is not None else 1.0
        sleep = min(scale * 2.0 ** (attempts - 1), 20.0)
        headers = getattr(response[0], "headers", {}) if response else {}
        if "x-amz-retry-after" in headers:
            sleep += 5.0
        if invocation.fits_aws_attempt(attempt_seconds, after=sleep):
            return None
        # No time for another attempt: the call ends with what this one got, raised here as
        # botocore would raise it. Not by answering False: only recent botocore reads that as
        # "no retry"; older ones (Lambda's runtime brings its own) sleep 0 s and retry.
        if caught_exception is not None:
            raise caught_exception
        assert response is not None  # an error answer (`_failed`)
        assert operation is not None  # botocore names it with every answer
        raise _client_error(client, response[1], operation.name)

    # `request-created` comes once per attempt, before anything is sent (and before any
    # `before-send` handler: moto's, a test's), and what it raises ends the call. What a
    # `needs-retry` handler raises ends the call too; ours, the most specific, goes first.
    client.meta.events.register_first("request-created.*.*", before_attempt)
    client.meta.events.register_first("needs-retry.*.*", needs_retry)
    return client


def _failed(response: BotocoreAnswer | None) -> bool:
    """Whether botocore's (HTTP answer, parsed answer) is an error answer."""
    assert response is not None  # botocore passes one whenever no exception was caught
    http_response, parsed = response
    return bool(http_response.status_code >= 300 or "Error" in parsed)


def _client_error(client: BaseClient, parsed: dict[str, Any], operation_name: str) -> Exception:
    # What botocore's client raises for an error answer (BaseClient._make_api_call): the
    # service's modeled exception for its code, a ClientError otherwise.
    error = parsed.get("Error", {})
    code = error.get("QueryErrorCode") or error.get("Code")
    exception: Exception = client.exceptions.from_code(code)(parsed, operation_name)
    return exception
