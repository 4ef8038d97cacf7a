"""update-state: the write routes. Thin: parse, identify, delegate to the layer's writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from offer_state.api import PartnerApi
from offer_state.event_handler import Response
from offer_state.models.airmiles_requests import StateChange, StateChanges
from offer_state.models.partner import AppliedChanges
from offer_state.observability import logger, metrics, tracer
from offer_state.routes import (
    CollectorNumberHeader,
    IdempotencyKeyHeader,
    LocalTimeHeader,
    OfferIdPath,
    StateChangesBodyParam,
    StatesBodyParam,
    route_docs,
)
from offer_state.writes import StateWrites

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

api = PartnerApi.from_env()
service, app = api.service, api.app
writes = StateWrites(service)


@app.put("/v1/offers/<offerId>/states", **route_docs("PUT /v1/offers/{offerId}/states"))
def update_offer_states(
    offerId: OfferIdPath,  # named as in the path
    body: StatesBodyParam,
    collector_number: CollectorNumberHeader = None,
    local_time: LocalTimeHeader = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response[AppliedChanges]:
    changes = StateChanges(state_changes=[StateChange(offer_id=offerId, states=body.states)])
    return _apply(changes, collector_number, local_time, idempotency_key)


@app.put("/v1/offers/states", **route_docs("PUT /v1/offers/states"))
def update_states(
    body: StateChangesBodyParam,
    collector_number: CollectorNumberHeader = None,
    local_time: LocalTimeHeader = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response[AppliedChanges]:
    return _apply(body, collector_number, local_time, idempotency_key)


def _apply(
    changes: StateChanges,
    collector_number: str | None,
    local_time: str | None,
    idempotency_key: UUID | None,
) -> Response[AppliedChanges]:
    answer, replayed = writes.update_states(
        api.call_context(collector_number), changes, local_time, idempotency_key
    )
    return api.json(answer, {"Idempotent-Replayed": "true"} if replayed else None)


# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: the raw event holds the bearer token.
@logger.inject_lambda_context(clear_state=True, log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return api.handle(event, context)
