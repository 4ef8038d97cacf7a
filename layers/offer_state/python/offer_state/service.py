"""What both functions share, built once per execution environment: the settings (read when
it is built), the upstream telemetry, and on first use the AWS clients, the secret, the AIR
MILES client, the collectors' pseudonyms and the audit writer, so a cold start pays only for
what its first request needs.

`reads.StateReads` and `writes.StateWrites` do the routes' work with it; `api.PartnerApi`
audits with it the requests refused before AIR MILES was called.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING

from offer_state.audit import Action, AuditContext, AuditEntry, AuditWriter, Outcome
from offer_state.config import GatewaySettings
from offer_state.deadlines import (
    AWS_CONNECT_SECONDS,
    AWS_MAX_ATTEMPTS,
    AWS_READ_SECONDS,
    InvocationDeadline,
    bound_by_invocation,
)
from offer_state.errors import OfferStateError
from offer_state.identity import Identity
from offer_state.observability import UpstreamTelemetry, count, logger
from offer_state.pseudonyms import KmsPseudonyms
from offer_state.token_store import TokenStore

# The token store: DynamoDB, KMS and Lambda answer in milliseconds inside a region.
TOKEN_STORE_CONNECT_SECONDS = 0.5
TOKEN_STORE_READ_SECONDS = 0.5

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from botocore.client import BaseClient
    from botocore.config import Config
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_kms import KMSClient
    from types_boto3_secretsmanager import SecretsManagerClient

    from offer_state.client import OfferStateClient
    from offer_state.secrets import SecretReader


@dataclass(frozen=True)
class CallContext:
    """A request that touches a collector: who it is about, how to audit it, the deadline of
    the invocation serving it, and that invocation's Lambda context (an idempotent write's
    lock expires with it)."""

    identity: Identity
    audit: AuditContext
    deadline: InvocationDeadline
    lambda_context: LambdaContext | None = None


def now_iso() -> str:
    """The time as the answers write it: UTC, microseconds, `Z`."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


class OfferStateService:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.telemetry = UpstreamTelemetry()

    @classmethod
    def from_env(cls) -> OfferStateService:
        return cls(GatewaySettings.from_env())

    def deadline(self, lambda_context: LambdaContext | None) -> InvocationDeadline:
        """The deadline of the invocation that `lambda_context` serves (None: outside Lambda,
        the upstream budget alone), from now."""
        remaining = getattr(lambda_context, "get_remaining_time_in_millis", None)
        return InvocationDeadline.start(
            remaining() if remaining is not None else None,
            budget=self.settings.client.total_budget,
            reserve=self.settings.deadline_reserve,
        )

    # ------------------------------------------------------------ dependencies (lazy)
    # boto3 (and botocore.config), requests (offer_state.client) and Powertools Parameters
    # (offer_state.secrets) are imported at first use, not at init: 143, 73 and 130 ms of CPU
    # at 0.15 of a core (update-state, 5 runs, medians). Any one of them at init would break
    # `make bench`'s cold-init target, at most 1.5x a bare `import boto3` (206 ms there; the
    # init is about 1.4x). Parameters most environments never load (they take the token from
    # its store). With SnapStart the before-snapshot hook imports them all.

    @cached_property
    def _boto_config(self) -> Config:
        from botocore.config import Config  # lazy (see above)

        # Short limits, so that one attempt fits in what an invocation keeps after AIR MILES;
        # standard mode retries throttling with backoff; `bound_by_invocation` keeps every
        # attempt and retry inside the invocation's deadline (offer_state.deadlines).
        return Config(
            connect_timeout=AWS_CONNECT_SECONDS,
            read_timeout=AWS_READ_SECONDS,
            retries={"mode": "standard", "total_max_attempts": AWS_MAX_ATTEMPTS},
        )

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        import boto3  # lazy (see above)

        client: DynamoDBClient = boto3.client("dynamodb", config=self._boto_config)
        return bound_by_invocation(client)

    @cached_property
    def kms(self) -> KMSClient:
        import boto3  # lazy (see above)

        client: KMSClient = boto3.client("kms", config=self._boto_config)
        return bound_by_invocation(client)

    @cached_property
    def secretsmanager(self) -> SecretsManagerClient:
        import boto3  # lazy (see above)

        client: SecretsManagerClient = boto3.client("secretsmanager", config=self._boto_config)
        client = bound_by_invocation(client)
        client.meta.events.register(
            "after-call.secrets-manager.GetSecretValue", lambda **_kw: count("SecretFetches")
        )
        return client

    @cached_property
    def _token_clients(self) -> dict[str, BaseClient]:
        return {}

    def _token_client(self, service: str) -> BaseClient:
        """An AWS client of the token store (DynamoDB, KMS, and Lambda for the refresher),
        built at its first use. Quick to give up (one attempt of at most 1 s): the caller
        retries a throttled read itself, and a store that fails costs a token of its own,
        while waiting on it would cost the request its time."""
        if service not in self._token_clients:
            import boto3  # lazy (see above)
            from botocore.config import Config  # lazy (see above)

            config = Config(
                connect_timeout=TOKEN_STORE_CONNECT_SECONDS,
                read_timeout=TOKEN_STORE_READ_SECONDS,
                retries={"mode": "standard", "total_max_attempts": 1},
            )
            attempt = TOKEN_STORE_CONNECT_SECONDS + TOKEN_STORE_READ_SECONDS
            client = bound_by_invocation(boto3.client(service, config=config), attempt)
            self._token_clients[service] = client
        return self._token_clients[service]

    def token_store(self, *, patient: bool = False) -> TokenStore | None:
        """The deployment's token (None where the environment names no store); `patient`
        (the refresher, which nobody waits on): through the service's usual AWS clients."""
        table, key_id = self.settings.token_table, self.settings.token_key_id
        if table is None or key_id is None:
            return None
        clients = (lambda name: getattr(self, name)) if patient else self._token_client
        return TokenStore(clients, table, key_id, self.settings.token_refresher)

    @cached_property
    def secrets(self) -> SecretReader:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider  # lazy (see above)

        from offer_state.secrets import SecretReader  # lazy (see above)

        return SecretReader(
            SecretsProvider(boto3_client=self.secretsmanager),
            self.settings.secret_id,
            self.settings.secret_max_age,
        )

    @cached_property
    def client(self) -> OfferStateClient:
        from offer_state.client import OfferStateClient  # lazy (see above)

        return OfferStateClient(
            self.settings.client,
            # Read when a token is fetched, not before: an environment that takes the
            # deployment's token from its store never builds the Secrets Manager client.
            lambda force_refresh: self.secrets.credentials(force_refresh),
            observer=self.telemetry,
            token_store=self.token_store(),
        )

    @cached_property
    def audit(self) -> AuditWriter:
        return AuditWriter(
            self.dynamodb,
            self.settings.audit_table,
            pseudonyms=self.pseudonyms,
            retention_days=self.settings.audit_retention_days,
            on_failure=lambda _operation: count("AuditWriteFailures"),
        )

    @cached_property
    def pseudonyms(self) -> KmsPseudonyms:
        """Collector numbers' pseudonyms under the current key (audit and idempotency keys)."""
        return KmsPseudonyms(self.kms, self.settings.pseudonym_key_id)

    @cached_property
    def retired_pseudonyms(self) -> tuple[KmsPseudonyms, ...]:
        """Pseudonyms under the keys used before the current one (a rotation's replays)."""
        return tuple(KmsPseudonyms(self.kms, k) for k in self.settings.retired_pseudonym_key_ids)

    def drop_connections(self) -> None:
        """Close every connection pooled so far, to AWS and to AIR MILES, in the clients built
        so far; each connects afresh at its next call. After a SnapStart restore: a connection
        pooled before the snapshot would be shared by every environment restored from it."""
        built = vars(self)  # the cached properties built so far; none is built here
        if "client" in built:
            self.client.transport.renew_session()
        clients = [built[name] for name in ("dynamodb", "kms", "secretsmanager") if name in built]
        clients += built.get("_token_clients", {}).values()
        for client in clients:
            # Clears botocore's urllib3 pools; the client stays usable and reconnects.
            client.close()

    # ------------------------------------------------------------ audit of failures

    def record_quietly(
        self,
        call: CallContext,
        entry: AuditEntry,
        outcome: Outcome,
        error: OfferStateError,
        unaudited: str,
        *,
        expected: bool = False,
        upstream_status: int | None = None,
        latency_ms: float | None = None,
    ) -> None:
        """The audit item of a request that ends with `error` (best effort: the caller gets
        `error` whatever happens here). An audit write that fails is logged as `unaudited`:
        a warning when the request was `expected` to be refused, else an error."""
        try:
            self.audit.record(
                call.identity,
                call.audit,
                entry,
                outcome,
                http_status=error.status,
                upstream_status=upstream_status,
                latency_ms=latency_ms,
                error_code=error.code,
            )
        except OfferStateError:
            log = logger.warning if expected else logger.error
            log(unaudited, extra={"errorCode": error.code})

    def reject(self, call: CallContext, action: Action, error: OfferStateError) -> None:
        """A REJECTED item for a request refused before AIR MILES was called."""
        self.record_quietly(
            call,
            AuditEntry(action),
            Outcome.REJECTED,
            error,
            "rejected request not audited",
            expected=True,
        )
