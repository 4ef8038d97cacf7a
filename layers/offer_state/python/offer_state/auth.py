"""The client-credentials token: fetched once, cached until shortly before it expires, and,
where a `TokenStore` is given, shared by every execution environment of the deployment.

Auth0 limits and bills token requests, so one token serves every call of a container for
its lifetime, and concurrent callers wait for a single fetch instead of racing. For the same
reason failures are not multiplied by traffic: after the token endpoint failed or refused the
credentials, or after AIR MILES refused a fresh token, calls needing a new token fail at
once with the same error for a cool-down (`token_failure_cooldown`, `token_refused_cooldown`,
or the endpoint's Retry-After when longer) instead of asking again.

With a store (offer_state.token_store), the whole deployment shares one token:

- **Reads.** The token is used from memory until its refresh window (the last tenth of its
  life, at least the margin, before the margin); from then on the store is looked at (at most
  once a second) before anything is fetched, and a newer token there is taken up.
- **Refresh.** In the window, the one environment that takes the lease (a conditional write
  with an owner and an expiry) fetches the next token, within half of what its request has
  left, and writes it encrypted; the others keep the current token meanwhile. If the fetch
  fails the current token serves on, and the lease, left to expire, keeps the others from
  asking again before then.
- **No valid token** (a cold burst, an expiry, a 401): one environment takes the lease and
  fetches; the others wait for its token, reading the store after 100 ms, then less often (up
  to every 400 ms). A holder waited on for `token_wait` seconds (at most a quarter of the
  upstream budget) is replaced (a conditional write on the lease it holds, which one waiter
  wins), and a lease past its time is free. If the holder cannot encrypt its token, it gives
  the lease up. Waiting keeps half of the upstream budget
  for the request itself: when only that is left, the waiter fetches a token of its own
  (metric `TokenFallbackFetches`) and offers it to the store.
- **401.** The refused token is removed from the store only if it is still the store's token
  (compare-and-swap on its `tokenId`); if another environment had replaced it, the new one is
  simply read. Then one environment refreshes, under the lease, not each of them.
- **Degraded, never down.** When the store cannot be read or written, this environment uses a
  token of its own, as without a store, reports it (`TokenStoreFailures`, and a log line), and
  tries the store again after `token_store_cooldown`. An item that cannot be used (a field
  missing, a ciphertext that does not decrypt) is reported the same way and replaced by the
  next token written under the lease.
- **Clocks.** Expiries and leases are absolute times from their writer's clock; each
  environment compares them with its own. The margin absorbs a few seconds of skew; more may
  cost one extra token, or a 401 answered as above.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import requests
from pydantic import ValidationError as PydanticValidationError

from offer_state.config import ClientCredentials, ClientSettings
from offer_state.errors import (
    OfferStateError,
    UpstreamAuthError,
    UpstreamError,
    error_for_upstream_status,
)
from offer_state.models.airmiles_answers import AirMilesTokenErrorBody, AirMilesTokenResult
from offer_state.token_store import (
    CorruptTokenItem,
    SharedItem,
    TokenStore,
    TokenStoreError,
    TokenStoreNoTime,
    token_id,
)
from offer_state.transport import Deadline, NotSentError, Transport

# `(force_refresh) -> credentials`; force_refresh=True after the token endpoint refused
# them, so a source backed by a cache (Secrets Manager) re-reads once: they may be rotated.
CredentialsSource = Callable[[bool], ClientCredentials]

# When the answer has no `expires_in` (Auth0 always sends it), assume a short life.
_DEFAULT_EXPIRES_IN = 300
# How often a waiting environment reads the store: soon (a holder's token usually comes within
# a fetch's time), then less often (a slow holder is not read ten times a second by every
# environment of a cold burst). And how often one in the refresh window looks there.
_POLL_SECONDS = 0.1
_POLL_MAX_SECONDS = 0.4
_RECHECK_SECONDS = 1.0
# A lease outlasts its holder's fetch, which ends by its invocation's upstream deadline (at
# most the whole budget): a holder still at work never loses it to a waiter's clock alone.
_LEASE_SLACK_SECONDS = 2.0


@runtime_checkable
class TokenObserver(Protocol):
    """Told what the shared token's store did (metrics, logs). Never given the token: a
    `token_id` at most. Must not raise."""

    def token_store_failed(self, operation: str, reason: str) -> None:
        """The store could not be used (this environment uses a token of its own)."""

    def token_fallback(self) -> None:
        """A wait for another environment's token ran out: this one fetches its own."""

    def shared_token(self, event: str, token_id: str) -> None:
        """`published` (a new token written to the store) or `invalidated` (a refused one
        removed from it)."""


class _NoTokenObserver:
    def token_store_failed(self, operation: str, reason: str) -> None:
        return None

    def token_fallback(self) -> None:
        return None

    def shared_token(self, event: str, token_id: str) -> None:
        return None


@dataclass(frozen=True)
class _Fetched:
    """A token from the endpoint: sent at `issued_at` (the wall clock), valid `expires_in`."""

    token: str
    issued_at: float
    expires_in: float

    @property
    def expires_at(self) -> float:
        return self.issued_at + self.expires_in


@dataclass(frozen=True)
class _Held:
    """The token in memory; times on the provider's (monotonic) clock."""

    token: str
    token_id: str
    usable_until: float  # not used from then on (the margin before its expiry)
    # Until then the token is used without asking the store: first when its refresh window
    # opens (== usable_until: not a shared token), then, in the window, a second after each
    # look at the store (`_refresh_ahead`).
    look_at_store_at: float


class TokenProvider:
    """Thread-safe cache of one client-credentials access token, shared through `store`
    (a `TokenStore`) where one is given (the module docstring)."""

    def __init__(
        self,
        settings: ClientSettings,
        transport: Transport,
        credentials: ClientCredentials | CredentialsSource,
        *,
        clock: Callable[[], float] = time.monotonic,
        store: TokenStore | None = None,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        observer: TokenObserver | None = None,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._source: CredentialsSource = (
            (lambda _force: credentials)
            if isinstance(credentials, ClientCredentials)
            else credentials
        )
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self._store = store
        self._observer: TokenObserver = observer or _NoTokenObserver()
        self._lock = threading.Lock()
        self._held: _Held | None = None
        # The last failure to get a token, answered again until `_failed_until`.
        self._failure: OfferStateError | None = None
        self._failed_until = 0.0
        self._renewal_refused_until = 0.0
        # The shared store: not used again until `_store_retry_at` after it failed; tokens
        # never taken from it again: the last AIR MILES refused, the last that would not
        # decrypt.
        self._store_retry_at = 0.0
        self._refused_id: str | None = None
        self._corrupt_id: str | None = None
        self._reported_corrupt: str | None = None
        self.owner = uuid.uuid4().hex[:16]  # this environment's name on the lease
        self.fetches = 0  # token requests sent (for tests and benchmarks)

    def token(self, deadline: Deadline, correlation_id: str | None = None) -> str:
        """A valid access token: from memory, else from the store, fetching one only when
        neither has one (or in the refresh window, under the lease); during a cool-down after
        a failure, that failure again (nothing is sent)."""
        held = self._held
        if held is not None and self._fresh(held):
            return held.token
        with self._lock:
            # Whoever held the lock before us may have got one already.
            held = self._held
            if held is not None and self._fresh(held):
                return held.token
            store = self._usable_store()
            if store is not None:
                try:
                    return self._shared_token(store, deadline, correlation_id)
                except TokenStoreError as exc:
                    self._store_failed(exc)
            return self._own_token(deadline, correlation_id)

    def may_renew(self) -> bool:
        """Whether a token AIR MILES refused (401) may be dropped for a new one: not during
        the cool-down that follows a fresh token refused too (`renewal_refused`)."""
        return self._clock() >= self._renewal_refused_until

    def renewal_refused(self) -> None:
        """AIR MILES refused a freshly fetched token as well: renewing again at once would
        only multiply token requests, so none is renewed for `token_refused_cooldown`."""
        self._renewal_refused_until = self._clock() + self._settings.token_refused_cooldown

    def invalidate(self, token: str) -> None:
        """Drop `token` (AIR MILES answered 401 to it), unless it was already replaced; in the
        store too, only if it is still the store's token."""
        refused = token_id(token)
        with self._lock:
            if self._held is not None and self._held.token == token:
                self._held = None
            self._refused_id = refused
            store = self._usable_store()
            if store is None:
                return
            try:
                if store.invalidate(refused):
                    self._observer.shared_token("invalidated", refused)
            except TokenStoreError as exc:
                self._store_failed(exc)

    # ------------------------------------------------------------ memory

    def _fresh(self, held: _Held) -> bool:
        now = self._clock()
        return now < held.usable_until and now < held.look_at_store_at

    def _hold(self, token: str, *, lifetime: float, seconds_left: float, shared: bool) -> _Held:
        """Keep `token` (of `lifetime` seconds, `seconds_left` of them left) in memory. A
        `shared` one (the store's) is used without looking at the store until its refresh
        window opens."""
        margin = self._margin(lifetime)
        usable_until = self._clock() + seconds_left - margin
        refresh_from = usable_until
        if shared:
            # The last tenth of the life, at least the margin, but never the first half.
            refresh_from -= min(max(margin, lifetime / 10), (lifetime - margin) / 2)
            self._reported_corrupt = None  # a usable item again: report the next broken one
        held = _Held(token, token_id(token), usable_until, refresh_from)
        self._held = held
        return held

    def _margin(self, lifetime: float) -> float:
        # A margin longer than half the lifetime would make short-lived tokens unusable.
        return min(self._settings.token_margin, lifetime / 2)

    def _hold_fetched(self, fetched: _Fetched, *, shared: bool) -> str:
        self._hold(
            fetched.token,
            lifetime=fetched.expires_in,
            seconds_left=fetched.expires_in,
            shared=shared,
        )
        return fetched.token

    def _own_token(self, deadline: Deadline, correlation_id: str | None) -> str:
        """Without the store: the token in memory while usable, else a fetched one."""
        held = self._held
        if held is not None and self._clock() < held.usable_until:
            return held.token
        self._raise_if_cooling_down(correlation_id)
        return self._hold_fetched(
            self._fetch_or_remember_failure(deadline, correlation_id), shared=False
        )

    # ------------------------------------------------------------ the shared store

    def _usable_store(self) -> TokenStore | None:
        if self._store is None or self._clock() < self._store_retry_at:
            return None
        return self._store

    def _store_failed(self, error: TokenStoreError) -> None:
        if isinstance(error, TokenStoreNoTime):
            return  # this invocation ran out of time, not the store out of order
        self._observer.token_store_failed(error.operation, error.reason)
        self._store_retry_at = self._clock() + self._settings.token_store_cooldown

    def _shared_token(
        self, store: TokenStore, deadline: Deadline, correlation_id: str | None
    ) -> str:
        item = store.read()
        held = self._adopt(store, item)
        if held is not None:
            return self._refresh_ahead(store, item, held, deadline, correlation_id)
        # The store has no usable token: a shared one we hold is no longer the store's (it
        # was refused, or replaced by one that does not decrypt).
        self._held = None
        self._raise_if_cooling_down(correlation_id)
        return self._wait_or_fetch(store, item, deadline, correlation_id)

    def _adopt(self, store: TokenStore, item: SharedItem) -> _Held | None:
        """The item's token in memory, if it is usable by our clock (decrypted once)."""
        if item.corrupt is not None:
            self._report_corrupt("GetItem", item.corrupt, item.corrupt)
            return None
        if item.token_id is None or item.token_id in (self._refused_id, self._corrupt_id):
            return None
        assert item.issued_at is not None
        assert item.expires_at is not None
        lifetime = item.expires_at - item.issued_at
        seconds_left = item.expires_at - self._wall()
        if seconds_left <= self._margin(lifetime):
            return None
        held = self._held
        if held is not None and held.token_id == item.token_id:
            token = held.token
        else:
            try:
                token = store.decrypt(item)
            except CorruptTokenItem as exc:
                self._corrupt_id = item.token_id
                self._report_corrupt(exc.operation, exc.reason, item.token_id)
                return None
        return self._hold(token, lifetime=lifetime, seconds_left=seconds_left, shared=True)

    def _report_corrupt(self, operation: str, reason: str, seen: str) -> None:
        # Once per item seen, not at every read of it while a new token is on its way.
        if self._reported_corrupt != seen:
            self._reported_corrupt = seen
            self._observer.token_store_failed(operation, f"corrupt item: {reason}")

    def _refresh_ahead(
        self,
        store: TokenStore,
        item: SharedItem,
        held: _Held,
        deadline: Deadline,
        correlation_id: str | None,
    ) -> str:
        """`held` (the store's token), and in its refresh window the next token if this
        environment wins the lease and gets one."""
        if self._clock() < held.look_at_store_at:
            return held.token
        self._held = dataclasses.replace(held, look_at_store_at=self._clock() + _RECHECK_SECONDS)
        if not self._cooling_down() and self._take_lease(store, item):
            # Half of what is left at most: the request still has its own call to make.
            try:
                return self._fetch_and_publish(
                    store, Deadline.after(deadline.remaining() / 2, deadline.clock), correlation_id
                )
            except OfferStateError:
                pass  # remembered for the cool-down; the current token is still valid
        return held.token

    def _take_lease(self, store: TokenStore, item: SharedItem, *, replacing: bool = False) -> bool:
        now = self._wall()
        # A lease of our own (a refresh that failed) is ours to take again.
        replacing = replacing or item.lease_owner == self.owner
        if not (replacing or item.lease_free(now)):
            return False
        until = now + self._settings.total_budget + _LEASE_SLACK_SECONDS
        return store.take_lease(self.owner, now, until, seen=item, replacing=replacing)

    def _wait_or_fetch(
        self, store: TokenStore, item: SharedItem, deadline: Deadline, correlation_id: str | None
    ) -> str:
        """No usable token in the store: fetch one under the lease, or wait for its holder's,
        or, when waiting has used what it may, fetch one without it."""
        waited_on: str | None = None
        since = self._clock()
        keep = self._settings.total_budget / 2  # for the fallback fetch and the call itself
        # Within the half that waiting may use, so that a holder is replaced before waiters
        # give up and fetch one token each (a small AIRMILES_TOTAL_BUDGET shortens the wait).
        wait_for_holder = min(self._settings.token_wait, self._settings.total_budget / 4)
        poll = _POLL_SECONDS
        while True:
            replacing = (
                item.lease_owner is not None
                and item.lease_owner == waited_on
                and self._clock() - since >= wait_for_holder
            )
            if self._take_lease(store, item, replacing=replacing):
                return self._fetch_and_publish(store, deadline, correlation_id)
            if item.lease_owner != waited_on:
                waited_on, since = item.lease_owner, self._clock()
            # Waiting for another environment's token is waiting on AIR MILES: from here the
            # budget counts (not before: the lease's holder fetches under its own budget).
            deadline.begin()
            left = deadline.remaining() - keep
            if left <= 0:
                break
            # The last sleep is cut short: the store is read once more at the very end (a
            # holder that took over may have written its token) before fetching one's own.
            self._sleep(min(poll, left))
            poll = min(2 * poll, _POLL_MAX_SECONDS)
            item = store.read()
            held = self._adopt(store, item)
            if held is not None:
                return held.token
        self._observer.token_fallback()
        fetched = self._fetch_or_remember_failure(deadline, correlation_id)
        offered = False
        try:
            offered = store.offer(fetched.token, fetched.issued_at, fetched.expires_at, seen=item)
        except TokenStoreError as exc:
            self._store_failed(exc)
        if offered:
            self._observer.shared_token("published", token_id(fetched.token))
        return self._hold_fetched(fetched, shared=offered)

    def _fetch_and_publish(
        self, store: TokenStore, deadline: Deadline, correlation_id: str | None
    ) -> str:
        """Under the lease: a new token, written to the store (which releases the lease)."""
        fetched = self._fetch_or_remember_failure(deadline, correlation_id)
        published = False
        try:
            published = store.publish(
                self.owner, fetched.token, fetched.issued_at, fetched.expires_at
            )
        except TokenStoreError as exc:
            self._store_failed(exc)
            if exc.operation == "Encrypt":
                # DynamoDB works: give the lease up, so that the others need not wait for it
                # to run out (best effort; it runs out anyway).
                with contextlib.suppress(TokenStoreError):
                    store.release(self.owner)
        if published:
            self._observer.shared_token("published", token_id(fetched.token))
        return self._hold_fetched(fetched, shared=published)

    # ------------------------------------------------------------ fetching

    def _cooling_down(self) -> bool:
        return self._failure is not None and self._clock() < self._failed_until

    def _raise_if_cooling_down(self, correlation_id: str | None) -> None:
        if self._failure is not None and self._cooling_down():
            raise self._failure.again(correlation_id)

    def _fetch_or_remember_failure(
        self, deadline: Deadline, correlation_id: str | None
    ) -> _Fetched:
        sent_before = self.fetches
        try:
            fetched = self._fetch(deadline, correlation_id)
        except NotSentError:
            raise  # our deadline left no time to ask: nothing to hold against the endpoint
        except OfferStateError as exc:
            if self.fetches > sent_before:  # the endpoint was asked (not our secret failing)
                self._failure = exc
                self._failed_until = self._clock() + self._cooldown(exc)
            raise
        self._failure = None
        self._refused_id = None  # whatever AIR MILES refused before, this one is new
        return fetched

    def _cooldown(self, error: OfferStateError) -> float:
        refused = isinstance(error, UpstreamAuthError)
        cooldown = (
            self._settings.token_refused_cooldown
            if refused
            else self._settings.token_failure_cooldown
        )
        return max(cooldown, error.retry_after or 0.0)

    def _fetch(self, deadline: Deadline, correlation_id: str | None) -> _Fetched:
        credentials = self._source(False)
        issued_at = self._wall()  # before asking: its expiry is no later than this + expires_in
        response = self._request(credentials, deadline, correlation_id)
        if response.status_code == 401:
            # Refused credentials may have been rotated since we read them: re-read once.
            response.close()
            credentials = self._source(True)
            response = self._request(credentials, deadline, correlation_id)
        if response.status_code != 200:
            raise _token_error(response, correlation_id)
        try:
            answer = AirMilesTokenResult.model_validate_json(response.content)
        except PydanticValidationError:
            raise UpstreamError(
                "The AIR MILES token endpoint answered in an unexpected shape.",
                upstream_status=response.status_code,
                correlation_id=correlation_id,
            ) from None
        return _Fetched(answer.access_token, issued_at, answer.expires_in or _DEFAULT_EXPIRES_IN)

    def _request(
        self, credentials: ClientCredentials, deadline: Deadline, correlation_id: str | None
    ) -> requests.Response:
        self.fetches += 1
        return self._transport.send(
            "token",
            "POST",
            self._settings.token_url,
            deadline=deadline,
            correlation_id=correlation_id,
            headers={"Accept": "application/json"},
            data={
                "grant_type": "client_credentials",
                "client_id": credentials.client_id,
                "client_secret": credentials.client_secret.get_secret_value(),
                "audience": credentials.audience,
            },
        )


def _token_error(response: requests.Response, correlation_id: str | None) -> Exception:
    try:
        body = AirMilesTokenErrorBody.model_validate_json(response.content)
    except PydanticValidationError:
        body = AirMilesTokenErrorBody()
    return error_for_upstream_status(
        response.status_code,
        endpoint="token",
        response_code=body.error,
        correlation_id=correlation_id,
    )
