"""The client-credentials token: fetched once, cached until shortly before it expires.

Auth0 limits and bills token requests, so one token serves every call of a container for
its lifetime, and concurrent callers wait for a single fetch instead of racing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests
from pydantic import ValidationError as PydanticValidationError

from offer_state.config import ClientCredentials, ClientSettings
from offer_state.errors import UpstreamError, error_for_upstream_status
from offer_state.models.airmiles_answers import AirMilesTokenErrorBody, AirMilesTokenResult
from offer_state.transport import Deadline, Transport

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
        self.fetches = 0  # token requests sent (for tests and benchmarks)

    def token(self, deadline: Deadline, correlation_id: str | None = None) -> str:
        """A valid access token, fetching one only when the cached one is (nearly) expired."""
        token = self._cached()
        if token is not None:
            return token
        with self._lock:
            # Whoever held the lock before us may have fetched it already.
            token = self._cached()
            if token is None:
                token = self._fetch(deadline, correlation_id)
            return token

    def invalidate(self, token: str) -> None:
        """Drop `token` (AIR MILES answered 401 to it), unless it was already replaced."""
        with self._lock:
            if self._token == token:
                self._token = None

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
