"""The write routes' work: a PUT to AIR MILES behind a write-ahead audit item, idempotent
with an Idempotency-Key (Powertools Idempotency on DynamoDB), answered in the partner's terms.

Powertools' idempotency errors become ours here, where idempotency is used: the caller sees
only `OfferStateError`s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any
from uuid import UUID

from offer_state.audit import Action, AuditEntry, Outcome, PendingRecord, collector_key
from offer_state.errors import DependencyUnavailableError, IdempotencyConflictError, OfferStateError
from offer_state.models.airmiles_requests import StateChanges
from offer_state.models.partner import AppliedChange, AppliedChanges, AppliedState
from offer_state.observability import logger, state_changed
from offer_state.service import CallContext, OfferStateService, now_iso


class StateWrites:
    """One per execution environment, over the shared `OfferStateService`."""

    def __init__(self, service: OfferStateService) -> None:
        self.service = service

    def update_states(
        self,
        call: CallContext,
        changes: StateChanges,
        local_time: str | None,
        idempotency_key: UUID | None,
    ) -> tuple[AppliedChanges, bool]:
        """Apply the changes; with an Idempotency-Key, a repeat returns the first answer
        (second value True) without calling AIR MILES or auditing again. A key reused with
        other changes, or still held by its first request, is an IdempotencyConflictError."""
        if idempotency_key is None:
            return self._apply(call=call, changes=changes, local_time=local_time)[0], False
        request = {
            # The collector is part of the key, pseudonymised like the audit key.
            "collector": collector_key(call.identity.collector_number, self.service.pepper()),
            "key": str(idempotency_key),
            "changes": changes.model_dump(mode="json", by_alias=True),
        }
        config, idempotent_apply = self._idempotency
        # The in-progress lock must expire with the invocation that holds it.
        config.register_lambda_context(call.lambda_context)
        with _idempotency_errors_as_ours():
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
            Action.UPDATE_STATES,
            offer_ids=[c["offerId"] for c in requested],
            requested_states=requested,
        )
        pending = self.service.audit.begin(call.identity, call.audit, entry)  # 503 before any PUT
        try:
            upstream_status = self.service.client.put(
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
        applied_at = now_iso()
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

        settings = self.service.settings
        if not settings.idempotency_table:
            raise RuntimeError("IDEMPOTENCY_TABLE_NAME is not set for this function")
        config = IdempotencyConfig(
            event_key_jmespath="[collector, key]",
            payload_validation_jmespath="changes",
            expires_after_seconds=settings.idempotency_ttl_seconds,
            response_hook=lambda response, _record: {**response, "replayed": True},
        )
        store = DynamoDBPersistenceLayer(
            table_name=settings.idempotency_table, boto3_client=self.service.dynamodb
        )

        def apply_state_changes(**kwargs: Any) -> dict[str, Any]:
            return self._apply(**kwargs)[1]

        return config, idempotent_function(
            apply_state_changes,
            data_keyword_argument="request",
            persistence_store=store,
            config=config,
        )

    def _finish_quietly(
        self,
        pending: PendingRecord,
        outcome: Outcome,
        http_status: int,
        upstream_status: int | None,
        **fields: Any,
    ) -> None:
        # The PENDING item already proves the attempt; the change itself must not be undone
        # or reported as failed because its outcome could not be written.
        try:
            self.service.audit.finish(
                pending, outcome, http_status=http_status, upstream_status=upstream_status, **fields
            )
        except DependencyUnavailableError:
            logger.error("audit outcome not written; the PENDING record remains")


@contextmanager
def _idempotency_errors_as_ours() -> Iterator[None]:
    """Powertools' idempotency exceptions as our errors (others pass through)."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

    try:
        yield
    except IdempotencyValidationError as exc:
        raise IdempotencyConflictError() from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise IdempotencyConflictError(
            "A request with this Idempotency-Key is still in flight; retry shortly."
        ) from exc
    except IdempotencyPersistenceLayerError as exc:
        raise DependencyUnavailableError("The idempotency store cannot be used.") from exc
