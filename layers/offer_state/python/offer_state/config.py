"""Settings of the AIR MILES client, read once (from arguments or the environment).

`ClientSettings.for_environment("uat")` is all a script needs; Lambda functions call
`ClientSettings.from_env()` at cold start. Every [assumed] upstream point has its default in
`upstream.py`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from offer_state import upstream
from offer_state.deadlines import ANSWER_SECONDS, AWS_ATTEMPT_SECONDS

# Plain HTTP is only ever allowed to this machine (the sandbox); AIR MILES is HTTPS only [doc].
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _https_or_loopback(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        return url.rstrip("/")
    raise ValueError("must be an https:// URL (http:// only on 127.0.0.1)")


class ClientCredentials(BaseModel):
    """What AIR MILES issues to a partner for the client-credentials grant."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    audience: str = Field(min_length=1)

    @field_validator("client_secret")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("client_secret is empty")
        return value


class ClientSettings(BaseModel):
    """Where AIR MILES is and how patiently to call it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str
    token_url: str
    origin_client: str = Field(default="external:partner:api", min_length=1, max_length=200)
    connect_timeout: float = Field(default=2.0, gt=0)
    read_timeout: float = Field(default=5.0, gt=0)
    # Total time one call may take, retries, token fetch and Retry-After waits included.
    # Must stay below the function timeout (and API Gateway's 29 s).
    total_budget: float = Field(default=8.0, gt=0, le=28)
    max_retries: int = Field(default=2, ge=0, le=10)
    backoff_factor: float = Field(default=0.2, ge=0)
    backoff_max: float = Field(default=2.0, ge=0)
    backoff_jitter: float = Field(default=0.1, ge=0)
    token_margin: float = Field(default=60.0, ge=0)
    # After the token endpoint failed (no usable answer), or refused the credentials (even
    # after re-reading them), or AIR MILES refused a fresh token: no token request for this
    # long; calls needing one fail at once with the same error (no amplification).
    token_failure_cooldown: float = Field(default=5.0, ge=0)
    token_refused_cooldown: float = Field(default=30.0, ge=0)
    # The deployment's token store (offer_state.auth): how long an environment uses a token of
    # its own after the store failed it before looking at the store again.
    token_store_cooldown: float = Field(default=30.0, ge=0)
    # A PUT is not sent with less than this left of the deadline (it would likely time out
    # with its outcome unknown); the caller is told that nothing was sent.
    put_min_seconds: float = Field(default=1.0, ge=0)
    # An answer's body is read up to this size (decoded); a larger one is a 502.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    health_path: str = upstream.HEALTH_PATH
    find_path: str = upstream.FIND_PATH
    get_path: str = upstream.GET_PATH
    count_path: str = upstream.COUNT_PATH
    put_path: str = upstream.PUT_PATH

    @field_validator("base_url", "token_url")
    @classmethod
    def _secure_url(cls, value: str) -> str:
        return _https_or_loopback(value)

    @field_validator("health_path", "find_path", "get_path", "count_path", "put_path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("a path starts with /")
        return value

    @model_validator(mode="after")
    def _timeouts_fit_budget(self) -> ClientSettings:
        if self.connect_timeout > self.total_budget:
            raise ValueError("connect_timeout is longer than total_budget")
        if self.put_min_seconds >= self.total_budget:
            raise ValueError("put_min_seconds leaves no PUT inside total_budget")
        return self

    @classmethod
    def for_environment(cls, environment: str, **overrides: Any) -> ClientSettings:
        """Settings for `uat`, `prod`, or any base URL (the token URL then must be given).
        `overrides`: other fields, as text or as their type (the model validates them)."""
        if environment in upstream.ENVIRONMENTS:
            base_url, token_url = upstream.ENVIRONMENTS[environment]
            overrides.setdefault("token_url", token_url)
        else:
            base_url = environment
        return cls(base_url=base_url, **overrides)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientSettings:
        """Read `AIRMILES_*` variables: AIRMILES_ENV (uat, prod or a URL), AIRMILES_TOKEN_URL,
        AIRMILES_ORIGIN_CLIENT, AIRMILES_CONNECT_TIMEOUT, AIRMILES_READ_TIMEOUT,
        AIRMILES_TOTAL_BUDGET, AIRMILES_MAX_RETRIES, AIRMILES_TOKEN_MARGIN,
        AIRMILES_TOKEN_STORE_COOLDOWN, AIRMILES_PUT_MIN_SECONDS, AIRMILES_PUT_PATH ..."""
        # By hand rather than with pydantic-settings: a dozen variables do not justify another
        # package in the layer and on the cold path.
        env = os.environ if environ is None else environ
        overrides: dict[str, str] = {}
        for field in cls.model_fields:
            if field == "base_url":
                continue
            value = env.get(f"AIRMILES_{field.upper()}")
            if value not in (None, ""):
                overrides[field] = value
        return cls.for_environment(env.get("AIRMILES_ENV", "uat"), **overrides)


class GatewaySettings(BaseModel):
    """What a gateway function reads from its environment (template.yaml sets it), once,
    at cold start. A missing or bad variable stops the function at init, loudly."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client: ClientSettings
    secret_id: str = Field(min_length=1)
    secret_max_age: int = Field(default=300, ge=0)
    audit_table: str = Field(min_length=1)
    audit_retention_days: int = Field(default=400, ge=1)
    collector_claim: str = Field(default="collector_number", min_length=1)
    # The KMS HMAC key of collectors' pseudonyms, and the keys it replaced (docs/audit.md).
    pseudonym_key_id: str = Field(min_length=1)
    retired_pseudonym_key_ids: tuple[str, ...] = ()
    # The identity provider's machine clients (`client_id` or `azp`) that may name a collector.
    machine_client_ids: frozenset[str] = frozenset()
    idempotency_table: str | None = None  # update-state only
    # The deployment's AIR MILES token (offer_state.token_store): its table and the KMS key its
    # token is encrypted with, both or neither (then each environment has its own), and the
    # refresher function that writes it.
    token_table: str | None = None
    token_key_id: str | None = None
    token_refresher: str | None = None
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    health_cache_seconds: float = Field(default=30.0, ge=0)
    # A failed health check is answered again for this long without calling AIR MILES.
    health_failure_cache_seconds: float = Field(default=5.0, ge=0)
    # Kept after the AIR MILES work of an invocation, before Lambda's Timeout, for the audit
    # outcome and the answer (offer_state.deadlines): at least one AWS attempt and the answer.
    deadline_reserve: float = Field(default=2.0, ge=AWS_ATTEMPT_SECONDS + ANSWER_SECONDS)

    @model_validator(mode="after")
    def _token_store_whole(self) -> GatewaySettings:
        if (self.token_table is None) != (self.token_key_id is None):
            raise ValueError("TOKEN_TABLE_NAME and TOKEN_KEY_ID go together")
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GatewaySettings:
        env = os.environ if environ is None else environ
        names = {
            "secret_id": "SECRET_ID",
            "secret_max_age": "SECRET_MAX_AGE",
            "audit_table": "AUDIT_TABLE_NAME",
            "audit_retention_days": "AUDIT_RETENTION_DAYS",
            "collector_claim": "COLLECTOR_CLAIM",
            "pseudonym_key_id": "PSEUDONYM_KEY_ID",
            "idempotency_table": "IDEMPOTENCY_TABLE_NAME",
            "token_table": "TOKEN_TABLE_NAME",
            "token_key_id": "TOKEN_KEY_ID",
            "token_refresher": "TOKEN_REFRESHER_FUNCTION",
            "deadline_reserve": "DEADLINE_RESERVE_SECONDS",
        }
        values: dict[str, Any] = {  # text and lists of it, validated by the model
            field: env[name] for field, name in names.items() if env.get(name) not in (None, "")
        }
        lists = {
            "retired_pseudonym_key_ids": "RETIRED_PSEUDONYM_KEY_IDS",
            "machine_client_ids": "MACHINE_CLIENT_IDS",
        }
        for field, name in lists.items():  # comma-separated, as the template joins them
            values[field] = [v.strip() for v in env.get(name, "").split(",") if v.strip()]
        return cls(client=ClientSettings.from_env(env), **values)
