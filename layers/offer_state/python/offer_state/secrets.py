"""The gateway's one secret: the AIR MILES client credentials (nothing else reads it: the
audit trail's pseudonyms come from KMS, `offer_state.pseudonyms`).

Read through Powertools Parameters (cached for `max_age` seconds); re-read with
`force_fetch` when the token endpoint refuses the credentials (they may have been rotated).
Every way of failing to get a usable secret is a `DependencyUnavailableError` (503).
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import (
    GetParameterError,
    TransformParameterError,
)
from pydantic import ValidationError as PydanticValidationError

from offer_state.config import ClientCredentials
from offer_state.errors import SECRET, DependencyUnavailableError, dependency_unavailable

_SECRETS = SECRET.name


class SecretReader:
    """Reads and validates the secret; the Parameters provider holds the cache.

    The secret's JSON is `{"client_id", "client_secret", "audience"}`, validated as
    `ClientCredentials`. Other keys are ignored (an `audit_pepper` from before the pseudonyms
    moved to KMS stays unread)."""

    def __init__(self, provider: SecretsProvider, secret_id: str, max_age: int) -> None:
        self._provider = provider
        self._secret_id = secret_id
        self._max_age = max_age

    def credentials(self, force: bool) -> ClientCredentials:
        """A `CredentialsSource` for the token provider."""
        try:
            value = self._provider.get(
                self._secret_id, max_age=self._max_age, transform="json", force_fetch=force
            )
        except TransformParameterError:
            raise DependencyUnavailableError(
                "The gateway's secret is not valid JSON.", dependency=_SECRETS
            ) from None
        except GetParameterError as exc:  # Powertools' wrapper of the AWS error
            raise dependency_unavailable(SECRET, exc) from None  # its context keeps it
        try:
            return ClientCredentials.model_validate(value)
        except PydanticValidationError:
            raise DependencyUnavailableError(
                "The gateway's secret lacks client_id, client_secret or audience.",
                dependency=_SECRETS,
            ) from None
