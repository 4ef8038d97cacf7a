"""The gateway's one secret: the AIR MILES client credentials (nothing else reads it: the
audit trail's pseudonyms come from KMS, `offer_state.pseudonyms`).

Read through Powertools Parameters (cached for `max_age` seconds); re-read with
`force_fetch` when the token endpoint refuses the credentials (they may have been rotated).
Every way of failing to get a usable secret is a `DependencyUnavailableError` (503).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic import ValidationError as PydanticValidationError

from offer_state.config import ClientCredentials
from offer_state.errors import DependencyUnavailableError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider


class GatewaySecret(BaseModel):
    """The secret's JSON: `{"client_id", "client_secret", "audience"}`. Other keys are ignored
    (an `audit_pepper` from before the pseudonyms moved to KMS stays unread)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    client_id: str = Field(min_length=1)
    client_secret: SecretStr = Field(min_length=1)
    audience: str = Field(min_length=1)

    @property
    def credentials(self) -> ClientCredentials:
        return ClientCredentials(
            client_id=self.client_id, client_secret=self.client_secret, audience=self.audience
        )


class SecretReader:
    """Reads and validates the secret; the Parameters provider holds the cache."""

    def __init__(self, provider: SecretsProvider, secret_id: str, max_age: int) -> None:
        self._provider = provider
        self._secret_id = secret_id
        self._max_age = max_age

    def secret(self, *, force: bool = False) -> GatewaySecret:
        from aws_lambda_powertools.utilities.parameters.exceptions import (
            GetParameterError,
            TransformParameterError,
        )

        try:
            value: Any = self._provider.get(
                self._secret_id, max_age=self._max_age, transform="json", force_fetch=force
            )
        except TransformParameterError:
            raise DependencyUnavailableError("The gateway's secret is not valid JSON.") from None
        except GetParameterError:
            raise DependencyUnavailableError(
                "The gateway's secret cannot be read from Secrets Manager."
            ) from None
        try:
            return GatewaySecret.model_validate(value)
        except PydanticValidationError:
            raise DependencyUnavailableError(
                "The gateway's secret lacks client_id, client_secret or audience."
            ) from None

    def credentials(self, force: bool) -> ClientCredentials:
        """A `CredentialsSource` for the token provider."""
        return self.secret(force=force).credentials
