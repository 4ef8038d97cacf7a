"""The client-credentials token, cached until shortly before it expires. After the endpoint
failed or refused the credentials, calls needing a new one get that error again for a cool-down
instead of asking (Auth0 bills and limits requests). With a store (the functions) the token is
only read, and fetched here only as the last resort: docs/architecture.md, "One AIR MILES token
per deployment". One clock for all of it: `time.time`, the one the stored times are on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NamedTuple, Protocol, runtime_checkable

import requests
from pydantic import ValidationError as PydanticValidationError

from offer_state import errors
from offer_state.config import ClientCredentials, ClientSettings
from offer_state.deadlines import Deadline
from offer_state.models.airmiles_answers import AirMilesTokenErrorBody, AirMilesTokenResult
from offer_state.token_store import (
    CorruptTokenItem,
    StoredToken,
    TokenStore,
    TokenStoreError,
    token_id,
)
from offer_state.transport import Transport

# `(force_refresh) -> credentials`; True after the endpoint refused them: a cached source
# (Secrets Manager) re-reads once, for they may have been rotated.
CredentialsSource = Callable[[bool], ClientCredentials]
_DEFAULT_EXPIRES_IN = 300  # when the answer has no `expires_in` (Auth0 always sends it)
_POLL_SECONDS, _POLL_MAX_SECONDS = 0.1, 0.8  # reading the store again while waiting
_ASK_EVERY, _LOOK_AGAIN = 5.0, 1.0  # asking the refresher; reading a token past refresh time


@runtime_checkable
class TokenObserver(Protocol):
    """Told (for metrics and logs) that the store failed, or a token of our own is fetched."""

    def token_store_failed(self, operation: str, reason: str) -> None: ...

    def token_fallback(self, reason: str) -> None: ...


class Fetched(NamedTuple):
    token: str
    issued_at: float  # when it was asked for
    expires_at: float


class _Held(NamedTuple):
    token: str
    usable_until: float  # the margin before its expiry
    fresh_until: float  # used as it is until then (no later than usable_until)


class TokenProvider:
    """Thread-safe cache of one client-credentials token, read from `store` where one is given."""

    def __init__(
        self,
        settings: ClientSettings,
        transport: Transport,
        credentials: ClientCredentials | CredentialsSource,
        *,
        store: TokenStore | None = None,
        observer: TokenObserver | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings, self._transport, self._store = settings, transport, store
        self._source: CredentialsSource = (
            credentials if callable(credentials) else lambda _force: credentials
        )
        self._observer, self._clock, self._sleep = observer, clock, sleep
        self._lock = threading.Lock()
        self._held: _Held | None = None
        self._failure: errors.OfferStateError | None = None  # answered until `_failed_until`
        self._failed_until = self._renewal_refused_until = 0.0
        self._refused: str | None = None  # a stored token's id never to be used again
        self._consistent = False  # the next read strongly consistent (after a 401)
        self._asked_at = -_ASK_EVERY
        self.fetches = 0  # token requests sent (for tests and benchmarks)

    def token(self, deadline: Deadline, correlation_id: str | None = None) -> str:
        """A valid token: from memory, else the store, else fetched (the module docstring)."""
        with self._lock:
            held, now = self._held, self._clock()
            if held is not None and now < held.fresh_until:
                return held.token
            usable = held if held is not None and now < held.usable_until else None
            if self._store is None:
                return usable.token if usable else self._fetch_and_hold(deadline, correlation_id)
            return self._from_store(self._store, usable, deadline, correlation_id)

    def may_renew(self) -> bool:
        """Whether a refused token may be replaced: not for a while after a fresh one was too."""
        return self._clock() >= self._renewal_refused_until

    def renewal_refused(self) -> None:
        self._renewal_refused_until = self._clock() + self._settings.token_refused_cooldown

    def invalidate(self, token: str) -> None:
        """Drops `token` (AIR MILES answered 401): never taken from the store again, which is
        read strongly consistent next, and the refresher asked at once if it still has it."""
        with self._lock:
            if self._held is not None and self._held.token == token:
                self._held = None
            self._refused, self._consistent, self._asked_at = token_id(token), True, -_ASK_EVERY

    def _from_store(
        self, store: TokenStore, usable: _Held | None, deadline: Deadline, cid: str | None
    ) -> str:
        consistent, self._consistent = self._consistent, False
        poll, reported, keep = _POLL_SECONDS, False, self._settings.total_budget / 2
        while True:
            try:
                stored = store.read(consistent=consistent)
                if stored.claim_until > self._clock():  # a refresher is fetching: a token of
                    keep = self._settings.total_budget / 4  # our own would come no sooner
                held = self._adopt(store, stored)
                if held is not None:
                    return held.token
                self._ask(store, stored)
            except TokenStoreError as exc:
                reported = reported or self._report(exc)
                if usable is None and not exc.passing:
                    return self._fetch_and_hold(deadline, cid, f"{exc.operation}: {exc.reason}")
            if usable is not None:  # ours, still valid: the store is left alone for a while
                fresh_until = self._clock() + self._settings.token_store_cooldown
                return self._hold(usable.token, usable.usable_until, fresh_until).token
            deadline.begin()  # waiting for a token is waiting on AIR MILES: the budget counts
            if deadline.remaining() - keep < poll:
                return self._fetch_and_hold(deadline, cid, "no token came in time")
            self._sleep(poll)
            poll = min(2 * poll, _POLL_MAX_SECONDS)

    def _adopt(self, store: TokenStore, stored: StoredToken) -> _Held | None:
        """The stored token in memory if usable (decrypted once), until its refresh time; past
        it, used while the item is read again every `_LOOK_AGAIN` s for its successor."""
        now, usable_until = self._clock(), self._usable_until(stored.issued_at, stored.expires_at)
        if not stored.whole or stored.token_id == self._refused or now >= usable_until:
            return None
        token = self._held.token if self._held is not None else ""
        if token_id(token) != stored.token_id:
            try:
                token = store.decrypt(stored)
            except CorruptTokenItem as exc:  # asked to be replaced, never decrypted again
                self._refused = stored.token_id
                self._report(exc)
                return None
        if now < stored.refresh_at:
            return self._hold(token, usable_until, stored.refresh_at)
        try:  # due and not replaced yet: the refresher asked, the item read again shortly
            self._ask(store, stored)
        except TokenStoreError as exc:
            self._report(exc)
        return self._hold(token, usable_until, now + _LOOK_AGAIN)

    def _hold(self, token: str, usable_until: float, fresh_until: float) -> _Held:
        self._held = _Held(token, usable_until, min(fresh_until, usable_until))
        return self._held

    def _usable_until(self, issued_at: float, expires_at: float) -> float:
        # A margin longer than half the lifetime would make short-lived tokens unusable.
        return expires_at - min(self._settings.token_margin, (expires_at - issued_at) / 2)

    def _report(self, exc: TokenStoreError) -> bool:
        if not exc.no_time and self._observer is not None:
            self._observer.token_store_failed(exc.operation, exc.reason)
        return True

    def _ask(self, store: TokenStore, stored: StoredToken) -> None:
        """Asks the refresher for a token (naming `stored` if refused), at most every 5 s."""
        if self._clock() >= self._asked_at + _ASK_EVERY:
            self._asked_at = self._clock()
            store.ask_refresher(stored.token_id if stored.token_id == self._refused else None)

    def _fetch_and_hold(self, deadline: Deadline, cid: str | None, fallback: str = "") -> str:
        """A token of our own, used until its margin; one fetched as a `fallback` (the reason)
        for the store's is used without looking at the store for `token_store_cooldown`."""
        if fallback and self._observer is not None:
            self._observer.token_fallback(fallback)
        if self._failure is not None and self._clock() < self._failed_until:
            raise self._failure.again(cid)
        token, issued_at, expires_at = self.fetch(deadline, cid)
        usable_until = self._usable_until(issued_at, expires_at)
        cooldown = self._settings.token_store_cooldown
        fresh_until = self._clock() + cooldown if fallback else usable_until
        return self._hold(token, usable_until, fresh_until).token

    def fetch(self, deadline: Deadline, correlation_id: str | None = None) -> Fetched:
        """A new token from the endpoint; a failure of the endpoint's starts a cool-down."""
        # Taken before asking: the token expires no later than `issued_at` + `expires_in`.
        sent_before, issued_at = self.fetches, self._clock()
        try:
            response = self._request(self._source(False), deadline, correlation_id)
            if response.status_code == 401:  # the credentials may have been rotated: re-read
                response.close()
                response = self._request(self._source(True), deadline, correlation_id)
            answer = _token_answer(response, correlation_id)
        except errors.OfferStateError as exc:
            # Held against the endpoint if it was asked (not when our secret or deadline failed).
            if self.fetches > sent_before and not isinstance(exc, errors.NotSentError):
                refused = isinstance(exc, errors.UpstreamAuthError)
                settings = self._settings
                cooldown = (
                    settings.token_refused_cooldown if refused else settings.token_failure_cooldown
                )
                self._failure = exc
                self._failed_until = self._clock() + max(cooldown, exc.retry_after or 0.0)
            raise
        self._failure = None
        expires_in = answer.expires_in or _DEFAULT_EXPIRES_IN
        return Fetched(answer.access_token, issued_at, issued_at + expires_in)

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


def _token_answer(response: requests.Response, correlation_id: str | None) -> AirMilesTokenResult:
    """The endpoint's token, or the error its answer means."""
    if response.status_code == 200:
        try:
            return AirMilesTokenResult.model_validate_json(response.content)
        except PydanticValidationError:
            raise errors.UpstreamError(
                "The AIR MILES token endpoint answered in an unexpected shape.",
                upstream_status=200,
                correlation_id=correlation_id,
            ) from None
    try:
        body = AirMilesTokenErrorBody.model_validate_json(response.content)
    except PydanticValidationError:
        body = AirMilesTokenErrorBody()
    raise errors.error_for_upstream_status(
        response.status_code,
        endpoint="token",
        response_code=body.error,
        correlation_id=correlation_id,
    )
