"""The write routes' work: a PUT to AIR MILES behind a write-ahead audit item, idempotent
with an Idempotency-Key (Powertools Idempotency on DynamoDB), answered in the partner's terms.

Powertools' idempotency errors become ours here, where idempotency is used: the caller sees
only `OfferStateError`s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn
from uuid import UUID

from offer_state.audit import Action, AuditEntry, Outcome, PendingNotStored, PendingRecord
from offer_state.callers import Collector
from offer_state.errors import (
    IDEMPOTENCY_STORE,
    DependencyUnavailableError,
    IdempotencyConflictError,
    NotSentError,
    OfferStateError,
    OutcomeUnknownError,
    dependency_unavailable,
)
from offer_state.models.airmiles_requests import StateChanges
from offer_state.models.partner import AppliedChange, AppliedChanges, AppliedState
from offer_state.observability import count, logger, state_changed
from offer_state.service import CallContext, OfferStateService, now_iso

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

# Idempotency records' ids are `<prefix>#<hash of [collector pseudonym, Idempotency-Key]>`.
IDEMPOTENCY_KEY_PREFIX = "update-states"
# What the write returns (and an idempotency record keeps) for a change of unknown outcome.
_UNKNOWN = "outcomeUnknown"


@dataclass
class _Attempt:
    """What one write did, kept here as it happens: Powertools' idempotency runs the write
    inside and may fail after it (saving the record), when only this tells what happened."""

    pending: PendingRecord | None = None
    upstream_status: int | None = None
    answer: dict[str, Any] | None = None  # the answer's body: AIR MILES applied the change
    error: OfferStateError | None = None  # the error the write ended with (audited)


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
        other changes, or still held by its first request, is an IdempotencyConflictError.

        The first answer a key keeps is a success, or an OutcomeUnknownError (the change was
        sent and its answer lost): a repeat raises that error again, `replayed`, and sends
        nothing. Any other error frees the key.

        Once AIR MILES applied the changes the answer says so, even if the idempotency record
        cannot be saved then (logged, counted in `IdempotencyRecordsNotSaved`, noted in the
        audit item): that key then cannot replay, and a retry with it, once the lock expired
        with this invocation, sends the same changes again."""
        attempt = _Attempt()
        if idempotency_key is None:
            self._apply(call=call, changes=changes, local_time=local_time, attempt=attempt)
            return self._answered(changes, attempt), False
        # Too late to send the changes: not sent (504), audited, before the idempotency lock,
        # an AWS write that the deadline would refuse anyway (a 503 for what is a lack of
        # time). Without a key, `_apply` checks the same first.
        if not call.deadline.leaves_time_for_a_change(self.service.settings.client.put_min_seconds):
            self._not_sent(call, _entry(changes), attempt)
        number = call.identity.collector_number
        request = {
            # The collector is part of the key, pseudonymised like the audit key; and under
            # each retired pseudonym key, so that a key first used before a rotation is still
            # recognised (docs/audit.md, "Pseudonyms").
            "collector": self.service.pseudonyms(number).value,
            "retired": [retired(number).value for retired in self.service.retired_pseudonyms],
            "key": str(idempotency_key),
            "changes": changes.model_dump(mode="json", by_alias=True),
        }
        configs, idempotent_apply = self._idempotency
        for config in configs:
            # The in-progress lock must expire with the invocation that holds it. (None outside
            # Lambda: Powertools' config holds an optional context, its setter is typed too
            # narrowly.)
            config.register_lambda_context(call.lambda_context)  # type: ignore[arg-type]
        try:
            with _idempotency_errors_as_ours(attempt):
                outcome = idempotent_apply(
                    request=request,
                    call=call,
                    changes=changes,
                    local_time=local_time,
                    attempt=attempt,
                )
        except _RecordNotSaved:
            logger.error("idempotency record not saved after the change was applied")
            count("IdempotencyRecordsNotSaved")
            return self._succeeded(changes, attempt, idempotency_record="NOT_SAVED"), False
        if outcome.get("replayed"):
            if _UNKNOWN in outcome:
                raise OutcomeUnknownError.replay(outcome[_UNKNOWN], call.audit.correlation_id)
            return AppliedChanges.model_validate(outcome["answer"]), True
        return self._answered(changes, attempt), False

    def _apply(
        self,
        *,
        call: CallContext,
        changes: StateChanges,
        local_time: str | None,
        attempt: _Attempt,
        **_: object,
    ) -> dict[str, Any]:
        """The write itself: the PENDING item, the PUT, and on failure the item's outcome
        (FAILED, or UNKNOWN when the change may have been applied). On success the answer's
        body, its outcome left to `_succeeded` (after the idempotency record is saved).

        A change of unknown outcome is returned, not raised (`{_UNKNOWN: ...}`, the error in
        `attempt.error`): Powertools keeps the record of what the function returns and
        deletes that of what it raises, and this answer must keep its key, so that a repeat
        gets it again rather than sending the change a second time."""
        entry = _entry(changes)
        # Too late to send the PUT: not sent, and audited as such. (Once the PENDING item is
        # written the transport checks again, right before sending.)
        if not call.deadline.leaves_time_for_a_change(self.service.settings.client.put_min_seconds):
            self._not_sent(call, entry, attempt)
        try:
            attempt.pending = self.service.audit.begin(call.identity, call.audit, entry)
        except PendingNotStored as exc:  # 503, and the change is not sent
            call.deadline.finishing()  # AIR MILES will not be called: the reserve may be used
            self._settle_unsent(exc)
            raise
        try:
            attempt.upstream_status = self.service.client.put(
                Collector(call.identity.collector_number),
                changes,
                correlation_id=call.audit.correlation_id,
                local_time=local_time,
                deadline=call.deadline.upstream,
            )
        except OfferStateError as exc:
            call.deadline.finishing()
            attempt.error = exc
            outcome = Outcome.UNKNOWN if exc.outcome_unknown else Outcome.FAILED
            if exc.outcome_unknown:
                count("WriteOutcomesUnknown")
            self._finish_quietly(
                attempt.pending, outcome, exc.status, exc.upstream_status, error_code=exc.code
            )
            if isinstance(exc, OutcomeUnknownError):
                return {_UNKNOWN: exc.saved()}
            raise
        call.deadline.finishing()
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
        attempt.answer = answer.model_dump(mode="json")
        return {"answer": attempt.answer}

    def _not_sent(self, call: CallContext, entry: AuditEntry, attempt: _Attempt) -> NoReturn:
        """Too little time is left to send the change and get its answer: it is not sent,
        and audited FAILED (best effort, in the reserve), nothing having reached AIR MILES."""
        error = NotSentError.for_change(call.audit.correlation_id)
        attempt.error = error
        call.deadline.finishing()
        self.service.record_quietly(
            call, entry, Outcome.FAILED, error, "change not sent and not audited"
        )
        raise error

    def _settle_unsent(self, failure: PendingNotStored) -> None:
        """The write-ahead item may be stored although `begin` failed (an attempt stored it and
        its answer was lost, then a retry failed): it would stay PENDING, and the reconciler
        would record UNKNOWN, "may have been applied", for a change that was never sent. It
        is recorded FAILED here, as the partner is answered, when it is there and DynamoDB
        lets us; otherwise the reconciler's UNKNOWN stands (the log line says so)."""
        try:
            settled = self.service.audit.settle_unsent(failure)
        except DependencyUnavailableError:
            logger.error("write-ahead audit item not settled; if it was stored it stays PENDING")
            return
        if settled:
            logger.warning("write-ahead audit item stored by a lost attempt recorded FAILED")

    def _answered(self, changes: StateChanges, attempt: _Attempt) -> AppliedChanges:
        """The answer of the write this invocation made: the applied changes (`_succeeded`), or
        the error of a change of unknown outcome (raised; its audit item already says so)."""
        if attempt.error is not None:
            raise attempt.error
        return self._succeeded(changes, attempt)

    def _succeeded(
        self, changes: StateChanges, attempt: _Attempt, idempotency_record: str | None = None
    ) -> AppliedChanges:
        """The applied answer, once its audit item says SUCCEEDED."""
        assert attempt.pending is not None
        assert attempt.answer is not None
        self._finish_quietly(
            attempt.pending,
            Outcome.SUCCEEDED,
            200,
            attempt.upstream_status,
            states_after=attempt.answer["stateChanges"],
            idempotency_record=idempotency_record,
        )
        for change in changes.state_changes:
            for state in change.states:
                state_changed(state.name, state.value)
        return AppliedChanges.model_validate(attempt.answer)

    @cached_property
    def _idempotency(self) -> tuple[list[IdempotencyConfig], Callable[..., dict[str, Any]]]:
        """Powertools Idempotency on DynamoDB around `_apply`: (its configs, idempotent apply).

        One idempotency layer per pseudonym key: the current key's around `_apply`, inside one
        per retired key. Each keeps the request under its own pseudonym of the collector, so a
        repeat is recognised under whichever key was current when the request was first made;
        each has its own persistence store (Powertools configures a store per function)."""
        # Only a write with an Idempotency-Key loads it: 133 ms of CPU at 0.15 of a core.
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        settings = self.service.settings
        if not settings.idempotency_table:
            raise RuntimeError("IDEMPOTENCY_TABLE_NAME is not set for this function")

        apply: Callable[..., dict[str, Any]] = self._apply
        configs = []
        collectors = ["collector"] + [
            f"retired[{i}]" for i in range(len(self.service.retired_pseudonyms))
        ]
        for collector in collectors:
            config = IdempotencyConfig(
                event_key_jmespath=f"[{collector}, key]",
                payload_validation_jmespath="changes",
                expires_after_seconds=settings.idempotency_ttl_seconds,
                response_hook=lambda response, _record: {**response, "replayed": True},
            )
            store = DynamoDBPersistenceLayer(
                table_name=settings.idempotency_table, boto3_client=self.service.dynamodb
            )
            # A fixed prefix, where Powertools' default names the function it wraps: a record
            # made by the current key's layer is found after a rotation by that key's layer,
            # which then wraps another function.
            apply = idempotent_function(
                apply,
                data_keyword_argument="request",
                persistence_store=store,
                config=config,
                key_prefix=IDEMPOTENCY_KEY_PREFIX,
            )
            configs.append(config)
        return configs, apply

    def _finish_quietly(
        self,
        pending: PendingRecord,
        outcome: Outcome,
        http_status: int,
        upstream_status: int | None,
        *,
        error_code: str | None = None,
        states_after: Sequence[Mapping[str, object]] | None = None,
        idempotency_record: str | None = None,
    ) -> None:
        # The PENDING item already proves the attempt; the change itself must not be undone
        # or reported as failed because its outcome could not be written.
        try:
            self.service.audit.finish(
                pending,
                outcome,
                http_status=http_status,
                upstream_status=upstream_status,
                error_code=error_code,
                states_after=states_after,
                idempotency_record=idempotency_record,
            )
        except DependencyUnavailableError:
            logger.error("audit outcome not written; the PENDING record remains")


class _RecordNotSaved(Exception):
    """AIR MILES applied the change, then the idempotency record could not be saved."""


def _entry(changes: StateChanges) -> AuditEntry:
    """What the audit item of these changes is about."""
    requested = changes.model_dump(mode="json", by_alias=True)["stateChanges"]
    return AuditEntry(
        Action.UPDATE_STATES,
        offer_ids=[c["offerId"] for c in requested],
        requested_states=requested,
    )


@contextmanager
def _idempotency_errors_as_ours(attempt: _Attempt) -> Iterator[None]:
    """Powertools' idempotency exceptions as our errors (others pass through). The store
    failing after the write ran (saving the record after a success or an unknown outcome,
    deleting it after a failure) does not change what the write did: a success is
    _RecordNotSaved, a failure or an unknown outcome its own error, as audited; before the
    write, nothing was sent: 503."""
    # Only a write with an Idempotency-Key loads it: 133 ms of CPU at 0.15 of a core.
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
        if attempt.answer is not None:
            raise _RecordNotSaved() from exc
        if attempt.error is not None:
            if attempt.error.outcome_unknown:
                # The key does not keep it: a repeat once the lock expired sends it again.
                logger.error("idempotency record of a change of unknown outcome not saved")
            else:
                logger.error("idempotency record of a failed write not deleted")
            raise attempt.error from exc
        raise dependency_unavailable(IDEMPOTENCY_STORE, exc) from exc
