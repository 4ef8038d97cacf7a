"""The client-credentials token: fetched once, cached until shortly before it expires.

Auth0 limits and bills token requests, so one token serves every call of a container for
its lifetime, and concurrent callers wait for a single fetch instead of racing. For the same
reason failures are not multiplied by traffic: after the token endpoint failed or refused the
credentials, or after AIR MILES refused a fresh token, calls needing a new token fail at
once with the same error for a cool-down (`token_failure_cooldown`, `token_refused_cooldown`,
or the endpoint's Retry-After when longer) instead of asking again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

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
from offer_state.transport import Deadline, NotSentError, Transport

# `(force_refresh) -> credentials`; force_refresh=True after the token endpoint refused
# them, so a source backed by a cache (Secrets Manager) re-reads once: they may be rotated.
CredentialsSource = Callable[[bool], ClientCredentials]

# When the answer has no `expires_in` (Auth0 always sends it), assume a short life.
_DEFAULT_EXPIRES_IN = 300


class TokenProvider:
    """Thread-safe cache of one client-credentials access token."""

    def __init__(
        self,
        settings: ClientSettings,
        transport: Transport,
        credentials: ClientCredentials | CredentialsSource,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._source: CredentialsSource = (
            (lambda _force: credentials)
            if isinstance(credentials, ClientCredentials)
            else credentials
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._valid_until = 0.0
        # The last failure to get a token, answered again until `_failed_until`.
        self._failure: OfferStateError | None = None
        self._failed_until = 0.0
        self._renewal_refused_until = 0.0
        self.fetches = 0  # token requests sent (for tests and benchmarks)

    def token(self, deadline: Deadline, correlation_id: str | None = None) -> str:
        """A valid access token, fetching one only when the cached one is (nearly) expired;
        during a cool-down after a failure, that failure again (nothing is sent)."""
        token = self._cached()
        if token is not None:
            return token
        with self._lock:
            # Whoever held the lock before us may have fetched it already.
            token = self._cached()
            if token is None:
                self._raise_if_cooling_down(correlation_id)
                token = self._fetch_or_remember_failure(deadline, correlation_id)
            return token

    def may_renew(self) -> bool:
        """Whether a token AIR MILES refused (401) may be dropped for a new one: not during
        the cool-down that follows a fresh token refused too (`renewal_refused`)."""
        return self._clock() >= self._renewal_refused_until

    def renewal_refused(self) -> None:
        """AIR MILES refused a freshly fetched token as well: renewing again at once would
        only multiply token requests, so none is renewed for `token_refused_cooldown`."""
        self._renewal_refused_until = self._clock() + self._settings.token_refused_cooldown

    def invalidate(self, token: str) -> None:
        """Drop `token` (AIR MILES answered 401 to it), unless it was already replaced."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _raise_if_cooling_down(self, correlation_id: str | None) -> None:
        if self._failure is not None and self._clock() < self._failed_until:
            raise self._failure.again(correlation_id)

    def _fetch_or_remember_failure(self, deadline: Deadline, correlation_id: str | None) -> str:
        sent_before = self.fetches
        try:
            token = self._fetch(deadline, correlation_id)
        except NotSentError:
            raise  # our deadline left no time to ask: nothing to hold against the endpoint
        except OfferStateError as exc:
            if self.fetches > sent_before:  # the endpoint was asked (not our secret failing)
                self._failure = exc
                self._failed_until = self._clock() + self._cooldown(exc)
            raise
        self._failure = None
        return token

    def _cooldown(self, error: OfferStateError) -> float:
        refused = isinstance(error, UpstreamAuthError)
        cooldown = (
            self._settings.token_refused_cooldown
            if refused
            else self._settings.token_failure_cooldown
        )
        return max(cooldown, error.retry_after or 0.0)

    def _cached(self) -> str | None:
        token = self._token
        if token is not None and self._clock() < self._valid_until:
            return token
        return None

    def _fetch(self, deadline: Deadline, correlation_id: str | None) -> str:
        credentials = self._source(False)
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
        expires_in = answer.expires_in or _DEFAULT_EXPIRES_IN
        # A margin longer than half the lifetime would make short-lived tokens unusable.
        margin = min(self._settings.token_margin, expires_in / 2)
        self._token = answer.access_token
        self._valid_until = self._clock() + expires_in - margin
        return answer.access_token

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
