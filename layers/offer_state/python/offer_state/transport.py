"""HTTP to AIR MILES: one pooled `requests.Session`, bounded retries, one hard deadline.

**The deadline is hard, on the wall clock.** Every exchange (connecting, sending, the status
line, the headers, the body) ends by the call's `Deadline`. requests only has per-operation
timeouts: each `recv` may take up to the read timeout, so an upstream sending one byte at a
time inside it would hold a call for as long as it likes, headers included. So the session's
adapter (`DeadlineAdapter`) makes urllib3 build its connections with an http.client response
class that reads through `_DeadlineReader`: before every `recv` it cuts the socket's timeout
to what is left of the deadline, and refuses to read once it has passed. Nothing runs in
another thread and no socket is shut down from outside: a read simply times out, as it would
if the upstream went quiet, and urllib3 and requests report it as the timeout they know. The
connect timeout is cut to what is left as well; a TLS handshake gets what is left after the
TCP connection. Sending our requests (a few kilobytes) does not block. The body is read here,
up to `max_body_bytes`, so a body read is a failure this module maps like any other.

**Retries.** `Transport.send` alternates an attempt (`_attempt`: one exchange, and whether
its failure may be repeated) and a wait (`_wait`: the policy's backoff or Retry-After, never
past the deadline). Why a loop of our own around urllib3's `Retry` instead of mounting `Retry`
on the adapter: requests gives an adapter one retry policy for every call, with no per-call
deadline, no way to shrink the read timeout to the time left, and Retry-After sleeps that
ignore any budget. So urllib3's `Retry` still decides *whether* an answer is worth another try
(statuses, Retry-After) and *how long* to back off (exponential with jitter), and this module
adds the deadline and the rules that keep a change from being applied twice or out of order:

- A request that changes nothing (the GETs, the token POST) is repeated after any transient
  failure: no connection, a timeout, a reset, a cut or undecodable answer, `502`/`503`/`504`.
- A change (`repeatable=False`: the PUT) is sent again only when it certainly did not reach
  AIR MILES: the connection could not be established (no byte was sent), or AIR MILES
  answered `429` or `503`, which say it was not processed (Retry-After honoured). Any other
  failure after it may have been sent leaves its outcome unknown: it is not sent again, and
  the error says so (`outcome_unknown`): a resend could re-apply it after a newer change.
"""

from __future__ import annotations

import http.client
import io
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError as Urllib3ConnectTimeoutError
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import MaxRetryError, NewConnectionError, ReadTimeoutError
from urllib3.util.retry import Retry

from offer_state.config import ClientSettings
from offer_state.deadlines import Deadline
from offer_state.errors import (
    NotSentError,
    OfferStateError,
    RateLimitedError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
    unknown_outcome,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "CallObserver",
    "Deadline",
    "DeadlineAdapter",
    "RequestData",
    "Transport",
    "outcome_unknown_status",
]

# What a `data` or `params` argument of requests may be: sent as given.
RequestData = str | Mapping[str, str] | list[tuple[str, str]] | None

# Transient answers worth another try for a request that changes nothing (docs/airmiles-api.md).
# 500 is not: it is a bug, not a blip.
RETRY_STATUSES = frozenset({502, 503, 504})
# The answers after which a change is certainly not applied and may be sent again.
CHANGE_RETRY_STATUSES = frozenset({429, 503})


def outcome_unknown_status(status: int) -> bool:
    """Whether an answer to a change leaves unknown if it was applied: any 5xx but 503 (which
    says it was not processed; a 500, 502 or 504 may come after AIR MILES, or a gateway in
    front of it, processed part or all of it), and any redirect (never followed: where the
    change went is not known). A 4xx refused it; a success applied it."""
    return (status >= 500 and status != 503) or 300 <= status < 400


# A retry is pointless when less than this is left of the deadline.
_MIN_USEFUL_SECONDS = 0.05
# Errors requests raises while preparing a request, before any connection.
_NOT_SENT_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.URLRequired,
)
_BODY_CHUNK = 64 * 1024


class CallObserver(Protocol):
    """Told about every HTTP attempt (metrics, tracing, benchmarks); `status` is None when the
    exchange failed (no answer, or an answer that could not be read whole). Must not raise."""

    def upstream_call(
        self, endpoint: str, status: int | None, seconds: float, attempt: int
    ) -> None: ...


class _NoObserver:
    def upstream_call(
        self, endpoint: str, status: int | None, seconds: float, attempt: int
    ) -> None:
        return None


class Transport:
    """Sends one logical request, retrying what may be retried while the deadline allows."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        session: requests.Session | None = None,
        observer: CallObserver | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._own_session = session is None
        self._session = session or _pooled_session()
        self._observer = observer or _NoObserver()
        self._sleep = sleep
        self._clock = clock
        self._policy = Retry(
            total=settings.max_retries,
            allowed_methods=frozenset({"GET", "POST"}),
            status_forcelist=RETRY_STATUSES,
            backoff_factor=settings.backoff_factor,
            backoff_max=settings.backoff_max,
            backoff_jitter=settings.backoff_jitter,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        # The same policy for a PUT, on the statuses a change may be retried on.
        self._change_policy = self._policy.new(
            allowed_methods=frozenset({"PUT"}), status_forcelist=CHANGE_RETRY_STATUSES
        )

    @property
    def session(self) -> requests.Session:
        return self._session

    def retry_after(self, response: requests.Response) -> float | None:
        """The answer's Retry-After in seconds (a number or an HTTP date), as urllib3 reads
        it; None when absent or unreadable."""
        value = response.headers.get("Retry-After")
        if value is None:
            return None
        try:
            return self._policy.parse_retry_after(value)
        except Exception:  # noqa: BLE001 - an unreadable Retry-After is treated as absent
            return None

    def deadline(self) -> Deadline:
        """A deadline of the whole budget from now (a call made outside an invocation)."""
        return Deadline.after(self._settings.total_budget, self._clock)

    def close(self) -> None:
        self._session.close()

    def renew_session(self) -> None:
        """Drop every pooled connection: a session of our own is replaced by a new one (no
        connection, no cookie of the old one survives); a session given to us is the caller's,
        so only its pools are closed (requests opens new ones at the next call)."""
        old = self._session
        if self._own_session:
            self._session = _pooled_session()
        old.close()

    def send(
        self,
        endpoint: str,
        method: str,
        url: str,
        *,
        deadline: Deadline,
        correlation_id: str | None,
        headers: Mapping[str, str],
        params: RequestData = None,
        data: RequestData = None,
        repeatable: bool = True,
    ) -> requests.Response:
        """The final answer, its body read (any status not worth retrying, or the last one
        when retries ran out). Raises when the deadline ends, the exchange keeps failing, or a
        Retry-After asks for longer than the deadline leaves. `repeatable=False` marks a
        change (see the module docstring): an error after it may have been sent carries
        `outcome_unknown`, and no attempt of it starts with less than `put_min_seconds` left
        (a NotSentError: nothing was sent)."""
        call = _Call(endpoint, method, url, deadline, correlation_id, headers, params, data)
        policy = self._policy if repeatable else self._change_policy
        min_seconds = _MIN_USEFUL_SECONDS if repeatable else self._settings.put_min_seconds
        retry, attempt = policy, 0
        while True:
            if deadline.remaining() < min_seconds:
                if repeatable:
                    raise NotSentError(correlation_id=correlation_id)
                raise NotSentError.for_change(correlation_id)
            attempt += 1
            outcome = self._attempt(call, attempt, repeatable)
            if outcome.response is not None and not policy.is_retry(
                method, outcome.response.status_code, outcome.retry_after is not None
            ):
                return outcome.response
            waited = self._wait(call, retry, outcome, min_seconds)
            if waited is None:
                return outcome.final()
            retry = waited

    def _attempt(self, call: _Call, attempt: int, repeatable: bool) -> _Outcome:
        """One exchange, told to the observer. Raises the failure of one that may not be
        made again (the module docstring's rules)."""
        started = self._clock()
        try:
            response = self._exchange(call)
        except _ExchangeFailed as failed:
            failure, may_repeat = failed.as_error(repeatable, call.correlation_id)
            self._observer.upstream_call(call.endpoint, None, self._clock() - started, attempt)
            if not may_repeat:
                raise failure from failed.__cause__
            return _Outcome(failure=failure)
        status = response.status_code
        self._observer.upstream_call(call.endpoint, status, self._clock() - started, attempt)
        return _Outcome(response=response, retry_after=self.retry_after(response))

    def _wait(
        self, call: _Call, retry: Retry, outcome: _Outcome, min_seconds: float
    ) -> Retry | None:
        """Sleeps before the next attempt, and returns the policy's state after this one; None
        when there is none to make (retries ran out, or the wait would not leave `min_seconds`
        of the deadline). A Retry-After beyond the deadline fails fast (a RateLimitedError)
        rather than sleep in vain."""
        raw = outcome.response.raw if outcome.response is not None else None
        try:
            retry = retry.increment(call.method, call.url, response=raw)
        except MaxRetryError:
            return None
        retry_after = outcome.retry_after
        wait = retry_after if retry_after is not None else retry.get_backoff_time()
        if wait + min_seconds > call.deadline.remaining():
            if retry_after is None:
                return None
            raise RateLimitedError(
                upstream_status=None if outcome.response is None else outcome.response.status_code,
                correlation_id=call.correlation_id,
                retry_after=retry_after,
            )
        if outcome.response is not None:
            outcome.response.close()
        self._sleep(wait)
        return retry

    def _exchange(self, call: _Call) -> requests.Response:
        """One attempt, its body read whole; _ExchangeFailed when it could not be done."""
        deadline = call.deadline
        deadline.begin()  # the upstream budget counts from the first exchange (deadlines)
        remaining = deadline.remaining()
        token = _EXCHANGE_DEADLINE.set(deadline)
        response: requests.Response | None = None
        try:
            response = self._session.request(
                call.method,
                call.url,
                headers=dict(call.headers),
                params=call.params,
                data=call.data,
                timeout=(
                    min(self._settings.connect_timeout, remaining),
                    min(self._settings.read_timeout, remaining),
                ),
                allow_redirects=False,
                stream=True,  # the body is read below, within the deadline and the size cap
            )
            body = _read_body(response, self._settings.max_body_bytes)
        except (
            requests.RequestException,
            Urllib3HTTPError,
            http.client.HTTPException,
            OSError,
            _BodyTooLarge,
        ) as exc:
            if response is not None:
                response.close()  # the connection is in an unknown state: never reused
            raise _ExchangeFailed(exc, timed_out=deadline.remaining() <= 0) from exc
        finally:
            _EXCHANGE_DEADLINE.reset(token)
        # Where requests keeps a body it read itself (`Response.content`); the stream was read
        # to its end, which iter_content has recorded.
        response._content = body
        return response


# ---------------------------------------------------------------- one request, one attempt


@dataclass(frozen=True)
class _Call:
    """One logical request, as `Transport.send` was given it."""

    endpoint: str
    method: str
    url: str
    deadline: Deadline
    correlation_id: str | None
    headers: Mapping[str, str]
    params: RequestData
    data: RequestData


@dataclass(frozen=True)
class _Outcome:
    """What one attempt came to: an answer (and its Retry-After), or a failure that may be
    repeated."""

    response: requests.Response | None = None
    failure: OfferStateError | None = None
    retry_after: float | None = None

    def final(self) -> requests.Response:
        """The answer, as the last one; or the failure, raised."""
        if self.failure is not None:
            raise self.failure
        assert self.response is not None
        return self.response


# ---------------------------------------------------------------- failures


class _BodyTooLarge(Exception):
    pass


@dataclass(frozen=True)
class _Kind:
    """A kind of failed exchange: the error it becomes, and whether it is a transient one."""

    error: type[OfferStateError]
    message: str
    transient: bool = True


_TIMEOUT = _Kind(UpstreamTimeoutError, "AIR MILES did not answer in time.")
_UNREACHABLE = _Kind(UpstreamUnavailableError, "AIR MILES could not be reached.")
_CLOSED = _Kind(UpstreamUnavailableError, "AIR MILES closed the connection without an answer.")
_CUT = _Kind(UpstreamError, "AIR MILES's answer was cut off.")
_UNDECODABLE = _Kind(UpstreamError, "AIR MILES's answer could not be decoded.")
_TOO_LARGE = _Kind(UpstreamError, "AIR MILES's answer is larger than the gateway reads.", False)
_OTHER = _Kind(UpstreamError, "The exchange with AIR MILES failed.", False)


class _ExchangeFailed(Exception):
    """One attempt failed; `as_error` says what it becomes."""

    def __init__(self, cause: BaseException, *, timed_out: bool) -> None:
        super().__init__(type(cause).__name__)
        self.sent = not _never_sent(cause)
        self.kind = _kind(cause, timed_out=timed_out, sent=self.sent)

    def as_error(
        self, repeatable: bool, correlation_id: str | None
    ) -> tuple[OfferStateError, bool]:
        """(the error, whether the request may be made again)."""
        error = self.kind.error(self.kind.message, correlation_id=correlation_id)
        if not self.sent:
            return error, True  # nothing reached AIR MILES: anything may be sent again
        if not repeatable:
            return unknown_outcome(error), False
        return error, self.kind.transient


def _kind(cause: BaseException, *, timed_out: bool, sent: bool) -> _Kind:
    if timed_out or isinstance(cause, requests.Timeout):
        return _TIMEOUT
    if not sent:
        return _UNREACHABLE
    if isinstance(cause, _BodyTooLarge):
        return _TOO_LARGE
    if isinstance(cause, requests.exceptions.ChunkedEncodingError):
        return _CUT
    if isinstance(cause, requests.exceptions.ContentDecodingError):
        return _UNDECODABLE
    if isinstance(cause, requests.ConnectionError):
        # A body read that timed out comes as a ConnectionError (requests' iter_content).
        timeouts = (TimeoutError, ReadTimeoutError)
        return _TIMEOUT if any(isinstance(c, timeouts) for c in _causes(cause)) else _CLOSED
    return _OTHER


def _never_sent(cause: BaseException) -> bool:
    """True only when the request certainly did not leave: it could not be prepared, or no
    connection could be established (urllib3 raises NewConnectionError or ConnectTimeoutError
    from connecting, before any byte is written). A reset or a timeout after connecting is not
    this: the request may have been received."""
    if isinstance(cause, _NOT_SENT_ERRORS):
        return True
    return any(
        isinstance(c, Urllib3ConnectTimeoutError | NewConnectionError) for c in _causes(cause)
    )


def _causes(error: BaseException) -> Iterator[BaseException]:
    """`error` and what it wraps: requests puts urllib3's error in its args, urllib3's
    MaxRetryError names it `reason`, `raise ... from` makes it `__cause__`. (Not `__context__`:
    an error merely handled on the way is not a cause.)"""
    seen: set[int] = set()
    pending: list[object] = [error]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [current.__cause__, getattr(current, "reason", None), *current.args]


def _read_body(response: requests.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(_BODY_CHUNK):
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------- the wall-clock deadline

# The deadline of the exchange under way in this thread, for the response class below
# (urllib3 builds connections and responses itself: nothing else reaches them per request).
_EXCHANGE_DEADLINE: ContextVar[Deadline | None] = ContextVar("offer_state_exchange", default=None)


class _DeadlineReader(io.RawIOBase):
    """The raw stream http.client reads an answer through: before every `recv` the socket's
    timeout becomes the smaller of its read timeout and what is left of the deadline, and
    nothing is read once the deadline has passed (a TimeoutError, as a socket timeout)."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)  # the SocketIO http.client would use
        self._deadline = deadline
        self._read_timeout = sock.gettimeout()  # urllib3 set the read timeout just before

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int | None:
        left = self._deadline.remaining()
        if left <= 0:
            raise TimeoutError("the call's deadline has passed")
        self._sock.settimeout(left if self._read_timeout is None else min(self._read_timeout, left))
        return self._raw.readinto(buffer)

    def fileno(self) -> int:
        return self._raw.fileno()

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    """http.client's response, reading through `_DeadlineReader` while a deadline is set."""

    def __init__(
        self,
        sock: socket.socket,
        debuglevel: int = 0,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(sock, debuglevel, method, url)
        deadline = _EXCHANGE_DEADLINE.get()
        if deadline is not None:
            self.fp.close()  # nothing read from it yet
            self.fp = io.BufferedReader(_DeadlineReader(sock, deadline))


class _DeadlineHTTPConnection(HTTPConnection):
    response_class = _DeadlineResponse


class _DeadlineHTTPSConnection(HTTPSConnection):
    response_class = _DeadlineResponse

    def _new_conn(self) -> socket.socket:
        # The TCP connection is made; the TLS handshake that follows gets what is left.
        sock = super()._new_conn()
        deadline = _EXCHANGE_DEADLINE.get()
        timeout = sock.gettimeout()
        if deadline is not None and timeout is not None:
            sock.settimeout(max(min(timeout, deadline.remaining()), 0.001))
        return sock


class _DeadlineHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections end every exchange by the call's deadline (the
    module docstring). Mount it on a session of your own to give it the same bound."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:  # requests' own, passed on
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _DeadlineHTTPConnectionPool,
            "https": _DeadlineHTTPSConnectionPool,
        }


def _pooled_session() -> requests.Session:
    session = requests.Session()
    # Retries are ours (see the module docstring): the adapter itself never retries.
    adapter = DeadlineAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.trust_env = False  # no proxy or .netrc surprises inside Lambda
    return session
