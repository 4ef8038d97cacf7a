"""HTTP to AIR MILES: one pooled `requests.Session`, bounded retries inside a time budget.

Why a loop of our own around urllib3's `Retry` instead of mounting `Retry` on the adapter:
requests gives an adapter one retry policy for every call, with no per-call deadline, no way
to shrink the read timeout to the time left, and Retry-After sleeps that ignore any budget.
So urllib3's `Retry` still decides *whether* to retry (methods, statuses, Retry-After) and
*how long* to back off (exponential with jitter), and this module only adds the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from offer_state.config import ClientSettings
from offer_state.errors import (
    OfferStateError,
    RateLimitedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

# Transient answers worth another try (docs/airmiles-api.md). 500 is not: it is a bug, not a blip.
RETRY_STATUSES = frozenset({502, 503, 504})
# PUT sets a state (idempotent); POST only ever goes to the token endpoint (safe to repeat).
RETRY_METHODS = frozenset({"GET", "PUT", "POST"})
# A retry is pointless when less than this is left of the budget.
_MIN_USEFUL_SECONDS = 0.05


class CallObserver(Protocol):
    """Told about every HTTP attempt (metrics, tracing, benchmarks). Must not raise."""

    def upstream_call(
        self, endpoint: str, status: int | None, seconds: float, attempt: int
    ) -> None: ...


class _NoObserver:
    def upstream_call(self, endpoint: str, status: int | None, seconds: float, attempt: int):
        return None


@dataclass(frozen=True)
class Deadline:
    """The monotonic instant by which one logical call must be done."""

    at: float
    clock: Callable[[], float] = time.monotonic

    def remaining(self) -> float:
        return self.at - self.clock()


class Transport:
    """Sends one logical request, retrying transient failures while the budget lasts."""

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
            allowed_methods=RETRY_METHODS,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=settings.backoff_factor,
            backoff_max=settings.backoff_max,
            backoff_jitter=settings.backoff_jitter,
            respect_retry_after_header=True,
            raise_on_status=False,
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
        return Deadline(self._clock() + self._settings.total_budget, self._clock)

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
        params: Any = None,
        data: Any = None,
    ) -> requests.Response:
        """The final answer (any status not worth retrying, or the last one when retries
        ran out); raises when the budget ends, the connection keeps failing, or a
        Retry-After asks for longer than the budget has left."""
        retry = self._policy
        attempt = 0
        while True:
            remaining = deadline.remaining()
            if remaining < _MIN_USEFUL_SECONDS:
                raise UpstreamTimeoutError(correlation_id=correlation_id)
            attempt += 1
            started = self._clock()
            failure: OfferStateError | None = None
            response: requests.Response | None = None
            try:
                response = self._session.request(
                    method,
                    url,
                    headers=dict(headers),
                    params=params,
                    data=data,
                    timeout=(
                        min(self._settings.connect_timeout, remaining),
                        min(self._settings.read_timeout, remaining),
                    ),
                    allow_redirects=False,
                )
            except requests.Timeout:
                failure = UpstreamTimeoutError(correlation_id=correlation_id)
            except requests.ConnectionError:
                failure = UpstreamUnavailableError(correlation_id=correlation_id)
            status = response.status_code if response is not None else None
            self._observer.upstream_call(endpoint, status, self._clock() - started, attempt)

            retry_after: float | None = None
            if response is not None:
                retry_after = self.retry_after(response)
                if not retry.is_retry(method, response.status_code, retry_after is not None):
                    return response
            try:
                retry = retry.increment(
                    method, url, response=response.raw if response is not None else None
                )
            except MaxRetryError:
                if failure is not None:
                    raise failure from None
                assert response is not None
                return response
            wait = retry_after if retry_after is not None else retry.get_backoff_time()
            if wait + _MIN_USEFUL_SECONDS > deadline.remaining():
                if retry_after is not None:
                    # Retry-After beyond the budget: fail fast rather than sleep in vain.
                    raise RateLimitedError(
                        upstream_status=status,
                        correlation_id=correlation_id,
                        retry_after=retry_after,
                    )
                if failure is not None:
                    raise failure
                assert response is not None
                return response
            if response is not None:
                response.close()  # hand the connection back to the pool before sleeping
            self._sleep(wait)


def _pooled_session() -> requests.Session:
    session = requests.Session()
    # Retries are ours (see the module docstring): the adapter itself never retries.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.trust_env = False  # no proxy or .netrc surprises inside Lambda
    return session
