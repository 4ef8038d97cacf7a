"""What the gateway does for each route, behind the thin handlers: call AIR MILES, shape the
answer, leave the audit record, keep writes idempotent.

One `OfferStateService` lives per execution environment. Its settings are read once when it
is built; AWS clients, the secret, the AIR MILES client and the idempotency layer are created
on first use, so a cold start pays only for what its first request needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from offer_state.audit import AuditContext, AuditEntry, AuditWriter, Outcome, collector_key
from offer_state.config import GatewaySettings
from offer_state.errors import DependencyUnavailableError, IdempotencyConflictError, OfferStateError
from offer_state.identity import Identity
from offer_state.models.airmiles_answers import AirMilesOfferStates
from offer_state.models.airmiles_requests import CountQuery, FindQuery, StateChanges
from offer_state.models.partner import (
    AppliedChange,
    AppliedChanges,
    AppliedState,
    CountAnswer,
    FindAnswer,
    HealthAnswer,
    OfferStatesAnswer,
    OfferStateView,
    StateView,
    UpstreamHealth,
)
from offer_state.observability import UpstreamTelemetry, count, logger, state_changed

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from offer_state.client import OfferStateClient
    from offer_state.secrets import SecretReader

ResultT = TypeVar("ResultT")

# Audit actions, one per route.
GET_STATES = "GET_STATES"
FIND_STATES = "FIND_STATES"
COUNT_STATES = "COUNT_STATES"
UPDATE_STATES = "UPDATE_STATES"


@dataclass(frozen=True)
class CallContext:
    """A request that touches a collector: who it is about, and how to audit it."""

    identity: Identity
    audit: AuditContext


def _now_iso() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


class OfferStateService:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.telemetry = UpstreamTelemetry()
        self._health: tuple[float, HealthAnswer] | None = None
        self._lambda_context: LambdaContext | None = None

    @classmethod
    def from_env(cls) -> OfferStateService:
        return cls(GatewaySettings.from_env())

    # ------------------------------------------------------------ dependencies (lazy)

    @cached_property
    def _boto_config(self) -> Any:
        from botocore.config import Config

        # Fail fast inside the API's budget; standard mode retries throttling with backoff.
        return Config(
            connect_timeout=1,
            read_timeout=2,
            retries={"mode": "standard", "max_attempts": 3},
        )

    @cached_property
    def dynamodb(self) -> Any:
        import boto3

        return boto3.client("dynamodb", config=self._boto_config)

    @cached_property
    def secrets(self) -> SecretReader:
        import boto3
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        from offer_state.secrets import SecretReader

        client = boto3.client("secretsmanager", config=self._boto_config)
        client.meta.events.register(
            "after-call.secrets-manager.GetSecretValue", lambda **_kw: count("SecretFetches")
        )
        return SecretReader(
            SecretsProvider(boto3_client=client),
            self.settings.secret_id,
            self.settings.secret_max_age,
        )

    @cached_property
    def client(self) -> OfferStateClient:
        from offer_state.client import OfferStateClient

        return OfferStateClient(
            self.settings.client, self.secrets.credentials, observer=self.telemetry
        )

    @cached_property
    def audit(self) -> AuditWriter:
        return AuditWriter(
            self.dynamodb,
            self.settings.audit_table,
            pepper=self._pepper,
            retention_days=self.settings.audit_retention_days,
            on_failure=lambda _operation: count("AuditWriteFailures"),
        )

    def begin_invocation(self, lambda_context: LambdaContext | None) -> None:
        """Per invocation: the idempotency layer needs the remaining time of this one."""
        self._lambda_context = lambda_context

    # ------------------------------------------------------------ reads

    def health(self, correlation_id: str) -> HealthAnswer:
        """AIR MILES health, cached so that probes do not hammer it (or the token endpoint)."""
        cached = self._health
        if cached is not None and time.monotonic() - cached[0] < self.settings.health_cache_seconds:
            return cached[1]
        statuses = self.client.health(correlation_id=correlation_id)
        healthy = bool(statuses) and all(s.healthy for s in statuses)
        answer = HealthAnswer(
            status="ok" if healthy else "degraded",
            upstream=UpstreamHealth(
                healthy=healthy, timestamp=statuses[0].timestamp if statuses else None
            ),
            checkedAt=_now_iso(),
        )
        self._health = (time.monotonic(), answer)
        return answer

    def get_states(
        self, call: CallContext, offer_ids: Sequence[UUID], local_time: str | None
    ) -> OfferStatesAnswer:
        entry = AuditEntry(GET_STATES, offer_ids=[str(o) for o in offer_ids])
        found = self._audited_read(
            call,
            entry,
            lambda collector: self.client.get(
                collector,
                offer_ids,
                correlation_id=call.audit.correlation_id,
                local_time=local_time,
            ),
        )
        by_id = {o.offer_id: o for o in found}
        return OfferStatesAnswer(offers=[_view(i, by_id.get(i)) for i in offer_ids])

    def find_states(
        self, call: CallContext, query: FindQuery, local_time: str | None
    ) -> FindAnswer:
        entry = AuditEntry(FIND_STATES, requested_states=_filters(query))
        result = self._audited_read(
            call,
            entry,
            lambda collector: self.client.find(
                collector, query, correlation_id=call.audit.correlation_id, local_time=local_time
            ),
        )
        return FindAnswer(
            offers=[_view(o.offer_id, o) for o in result.offers],
            pageNumber=result.page_number if result.page_number is not None else query.page_number,
            pageSize=result.page_size if result.page_size is not None else query.page_size,
            totalCount=result.total_count,
        )

    def count_states(
        self, call: CallContext, query: CountQuery, local_time: str | None
    ) -> CountAnswer:
        entry = AuditEntry(COUNT_STATES, requested_states=_filters(query))
        number = self._audited_read(
            call,
            entry,
            lambda collector: self.client.count(
                collector, query, correlation_id=call.audit.correlation_id, local_time=local_time
            ),
        )
        return CountAnswer(count=number)

    def _audited_read(
        self, call: CallContext, entry: AuditEntry, read: Callable[[Any], ResultT]
    ) -> ResultT:
        """One audit item after the call. If it cannot be written the answer is 503: what
        cannot be audited is not disclosed."""
        from offer_state.client import Collector

        started = time.monotonic()
        try:
            result = read(Collector(call.identity.collector_number))
        except OfferStateError as exc:
            self._record_quietly(call, entry, Outcome.FAILED, exc, started)
            raise
        self.audit.record(
            call.identity,
            call.audit,
            entry,
            Outcome.SUCCEEDED,
            http_status=200,
            upstream_status=200,
            latency_ms=(time.monotonic() - started) * 1000,
        )
        return result

    # ------------------------------------------------------------ writes

    def update_states(
        self,
        call: CallContext,
        changes: StateChanges,
        local_time: str | None,
        idempotency_key: UUID | None,
    ) -> tuple[AppliedChanges, bool]:
        """Apply the changes; with an Idempotency-Key, a repeat returns the first answer
        (second value True) without calling AIR MILES or auditing again."""
        if idempotency_key is None:
            return self._apply(call=call, changes=changes, local_time=local_time)[0], False
        request = {
            # The collector is part of the key, pseudonymised like the audit key.
            "collector": collector_key(call.identity.collector_number, self._pepper()),
            "key": str(idempotency_key),
            "changes": changes.model_dump(mode="json", by_alias=True),
        }
        config, idempotent_apply = self._idempotency
        # The in-progress lock must expire with the invocation that holds it.
        config.register_lambda_context(self._lambda_context)
        outcome = idempotent_apply(
            request=request, call=call, changes=changes, local_time=local_time
        )
        return AppliedChanges.model_validate(outcome["answer"]), bool(outcome.get("replayed"))

    def _apply(
        self, *, call: CallContext, changes: StateChanges, local_time: str | None, **_: Any
    ) -> tuple[AppliedChanges, dict[str, Any]]:
        from offer_state.client import Collector

        requested = changes.model_dump(mode="json", by_alias=True)["stateChanges"]
        entry = AuditEntry(
            UPDATE_STATES,
            offer_ids=[c["offerId"] for c in requested],
            requested_states=requested,
        )
        pending = self.audit.begin(call.identity, call.audit, entry)  # 503 before any PUT
        try:
            upstream_status = self.client.put(
                Collector(call.identity.collector_number),
                changes,
                correlation_id=call.audit.correlation_id,
                local_time=local_time,
            )
        except OfferStateError as exc:
            self._finish_quietly(
                pending, Outcome.FAILED, exc.status, exc.upstream_status, error_code=exc.code
            )
            raise
        applied_at = _now_iso()
        answer = AppliedChanges(
            stateChanges=[
                AppliedChange(
                    offerId=change.offer_id,
                    states=[
                        AppliedState(name=s.name, value=s.value, updatedAt=applied_at)
                        for s in change.states
                    ],
                )
                for change in changes.state_changes
            ]
        )
        body = answer.model_dump(mode="json")
        self._finish_quietly(
            pending, Outcome.SUCCEEDED, 200, upstream_status, states_after=body["stateChanges"]
        )
        for change in changes.state_changes:
            for state in change.states:
                state_changed(state.name, state.value)
        return answer, {"answer": body}

    @cached_property
    def _idempotency(self) -> tuple[Any, Callable[..., dict[str, Any]]]:
        """Powertools Idempotency on DynamoDB around `_apply`: (config, idempotent apply)."""
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        if not self.settings.idempotency_table:
            raise RuntimeError("IDEMPOTENCY_TABLE_NAME is not set for this function")
        config = IdempotencyConfig(
            event_key_jmespath="[collector, key]",
            payload_validation_jmespath="changes",
            expires_after_seconds=self.settings.idempotency_ttl_seconds,
            response_hook=lambda response, _record: {**response, "replayed": True},
        )
        store = DynamoDBPersistenceLayer(
            table_name=self.settings.idempotency_table, boto3_client=self.dynamodb
        )

        def apply_state_changes(**kwargs: Any) -> dict[str, Any]:
            return self._apply(**kwargs)[1]

        return config, idempotent_function(
            apply_state_changes,
            data_keyword_argument="request",
            persistence_store=store,
            config=config,
        )

    # ------------------------------------------------------------ rejections

    def reject(self, call: CallContext, action: str, error: OfferStateError) -> None:
        """A REJECTED item for a request refused before AIR MILES was called (best effort:
        the caller already gets an error)."""
        try:
            self.audit.record(
                call.identity,
                call.audit,
                AuditEntry(action),
                Outcome.REJECTED,
                http_status=error.status,
                error_code=error.code,
            )
        except OfferStateError:
            logger.warning("rejected request not audited", extra={"errorCode": error.code})

    # ------------------------------------------------------------ helpers

    def _pepper(self) -> bytes:
        return self.secrets.secret().audit_pepper.get_secret_value().encode()

    def _record_quietly(
        self,
        call: CallContext,
        entry: AuditEntry,
        outcome: Outcome,
        error: OfferStateError,
        started: float,
    ) -> None:
        # The caller gets the original error; a failed audit write is logged and counted.
        try:
            self.audit.record(
                call.identity,
                call.audit,
                entry,
                outcome,
                http_status=error.status,
                upstream_status=error.upstream_status,
                latency_ms=(time.monotonic() - started) * 1000,
                error_code=error.code,
            )
        except OfferStateError:
            logger.error("failed read not audited", extra={"errorCode": error.code})

    def _finish_quietly(
        self,
        pending: Any,
        outcome: Outcome,
        http_status: int,
        upstream_status: int | None,
        **fields: Any,
    ) -> None:
        # The PENDING item already proves the attempt; the change itself must not be undone
        # or reported as failed because its outcome could not be written.
        try:
            self.audit.finish(
                pending, outcome, http_status=http_status, upstream_status=upstream_status, **fields
            )
        except DependencyUnavailableError:
            logger.error("audit outcome not written; the PENDING record remains")


def _view(offer_id: UUID, entry: AirMilesOfferStates | None) -> OfferStateView:
    """One offer as the partner app labels it (no entry: AIR MILES knows no state of it)."""
    states = entry.states if entry is not None else []
    pairs = {(s.name, s.value) for s in states}
    return OfferStateView(
        offerId=offer_id,
        optedIn=("OPT_IN", "OPTED_IN") in pairs,
        saved=("SAVE", "SAVED") in pairs,
        states=[StateView(name=s.name, value=s.value, updatedAt=s.updated_at) for s in states],
    )


def _filters(query: CountQuery) -> list[dict[str, Any]]:
    return [{"name": f.name, "value": f.value} for f in query.state]


def idempotency_conflict(exc: Exception) -> OfferStateError | None:
    """Powertools' idempotency exceptions as our errors (None: not one of them)."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

    if isinstance(exc, IdempotencyValidationError):
        return IdempotencyConflictError()
    if isinstance(exc, IdempotencyAlreadyInProgressError):
        return IdempotencyConflictError(
            "A request with this Idempotency-Key is still in flight; retry shortly."
        )
    if isinstance(exc, IdempotencyPersistenceLayerError):
        return DependencyUnavailableError("The idempotency store cannot be used.")
    return None
