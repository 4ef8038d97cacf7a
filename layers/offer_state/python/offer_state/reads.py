"""The read routes' work: AIR MILES health (cached), and GET, FIND and COUNT, each audited
after the call and answered in the partner's terms."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol, TypeVar
from uuid import UUID

from offer_state.audit import Action, AuditEntry, Outcome
from offer_state.callers import Collector
from offer_state.deadlines import Deadline, InvocationDeadline
from offer_state.errors import OfferStateError
from offer_state.models.airmiles_answers import AirMilesOfferStates
from offer_state.models.airmiles_requests import CountQuery, FindQuery
from offer_state.models.partner import (
    CountAnswer,
    FindAnswer,
    HealthAnswer,
    OfferStatesAnswer,
    OfferStateView,
    StateView,
    UpstreamHealth,
)
from offer_state.service import CallContext, OfferStateService, now_iso

QueryT = TypeVar("QueryT")
ResultT = TypeVar("ResultT")
QueryT_contra = TypeVar("QueryT_contra", contravariant=True)
ResultT_co = TypeVar("ResultT_co", covariant=True)


class ClientRead(Protocol[QueryT_contra, ResultT_co]):
    """One of the client's reads: `OfferStateClient.get`, `find` or `count`."""

    def __call__(
        self,
        caller: Collector,
        query: QueryT_contra,
        /,
        *,
        correlation_id: str,
        local_time: str | None,
        deadline: Deadline,
    ) -> ResultT_co: ...


class StateReads:
    """One per execution environment, over the shared `OfferStateService`."""

    def __init__(self, service: OfferStateService) -> None:
        self.service = service
        self._health: tuple[float, HealthAnswer] | None = None
        self._health_failure: tuple[float, OfferStateError] | None = None

    def health(self, correlation_id: str, deadline: InvocationDeadline) -> HealthAnswer:
        """AIR MILES health, cached so that probes do not hammer it (or the token endpoint):
        an answer for `health_cache_seconds`, a failure (raised again, as it was) for
        `health_failure_cache_seconds`."""
        settings = self.service.settings
        now = time.monotonic()
        cached = self._health
        if cached is not None and now - cached[0] < settings.health_cache_seconds:
            return cached[1]
        failed = self._health_failure
        if failed is not None and now - failed[0] < settings.health_failure_cache_seconds:
            raise failed[1].again(correlation_id)
        try:
            statuses = self.service.client.health(
                correlation_id=correlation_id, deadline=deadline.upstream
            )
        except OfferStateError as exc:
            self._health_failure = (time.monotonic(), exc)
            raise
        healthy = bool(statuses) and all(s.healthy for s in statuses)
        answer = HealthAnswer(
            status="ok" if healthy else "degraded",
            upstream=UpstreamHealth(
                healthy=healthy, timestamp=statuses[0].timestamp if statuses else None
            ),
            checkedAt=now_iso(),
        )
        self._health = (time.monotonic(), answer)
        return answer

    def get_states(
        self, call: CallContext, offer_ids: Sequence[UUID], local_time: str | None
    ) -> OfferStatesAnswer:
        entry = AuditEntry(Action.GET_STATES, offer_ids=[str(o) for o in offer_ids])
        found = self._audited_read(call, entry, self.service.client.get, offer_ids, local_time)
        by_id = {o.offer_id: o for o in found}
        return OfferStatesAnswer(offers=[_view(i, by_id.get(i)) for i in offer_ids])

    def find_states(
        self, call: CallContext, query: FindQuery, local_time: str | None
    ) -> FindAnswer:
        entry = AuditEntry(Action.FIND_STATES, requested_states=_filters(query))
        result = self._audited_read(call, entry, self.service.client.find, query, local_time)
        return FindAnswer(
            offers=[_view(o.offer_id, o) for o in result.offers],
            pageNumber=result.page_number if result.page_number is not None else query.page_number,
            pageSize=result.page_size if result.page_size is not None else query.page_size,
            totalCount=result.total_count,
        )

    def count_states(
        self, call: CallContext, query: CountQuery, local_time: str | None
    ) -> CountAnswer:
        entry = AuditEntry(Action.COUNT_STATES, requested_states=_filters(query))
        number = self._audited_read(call, entry, self.service.client.count, query, local_time)
        return CountAnswer(count=number)

    def _audited_read(
        self,
        call: CallContext,
        entry: AuditEntry,
        read: ClientRead[QueryT, ResultT],
        query: QueryT,
        local_time: str | None,
    ) -> ResultT:
        """`read(collector, query, ...)`, one of the client's GET, FIND and COUNT, and one audit
        item after it. If that cannot be written the answer is 503: what cannot be audited is
        not disclosed."""
        # The collector's pseudonym (the audit item's key) first: KMS is then asked while there
        # is time, not in the reserve kept for the record, and an unusable key costs no call.
        self.service.audit.pseudonym(call.identity.collector_number)
        started = time.monotonic()
        try:
            result = read(
                Collector(call.identity.collector_number),
                query,
                correlation_id=call.audit.correlation_id,
                local_time=local_time,
                deadline=call.deadline.upstream,
            )
        except OfferStateError as exc:
            call.deadline.finishing()
            # The caller gets the original error; a failed audit write is logged and counted.
            self.service.record_quietly(
                call,
                entry,
                Outcome.FAILED,
                exc,
                "failed read not audited",
                upstream_status=exc.upstream_status,
                latency_ms=(time.monotonic() - started) * 1000,
            )
            raise
        call.deadline.finishing()
        self.service.audit.record(
            call.identity,
            call.audit,
            entry,
            Outcome.SUCCEEDED,
            http_status=200,
            upstream_status=200,
            latency_ms=(time.monotonic() - started) * 1000,
        )
        return result


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


def _filters(query: CountQuery) -> list[dict[str, str]]:
    return [{"name": f.name, "value": f.value} for f in query.state]
