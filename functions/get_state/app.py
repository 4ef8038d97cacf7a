"""get-state: the read routes. Thin: parse, identify, delegate to the layer's reads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from offer_state.api import PartnerApi
from offer_state.event_handler import Query
from offer_state.models.airmiles_requests import CountQuery, FindQuery
from offer_state.models.partner import CountAnswer, FindAnswer, HealthAnswer, OfferStatesAnswer
from offer_state.observability import logger, metrics, tracer
from offer_state.reads import StateReads
from offer_state.routes import CollectorNumberHeader, LocalTimeHeader, OfferIdsQuery, route_docs

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

api = PartnerApi.from_env()
service, app = api.service, api.app
reads = StateReads(service)


@app.get("/health", **route_docs("GET /health"))
def health() -> HealthAnswer:
    return reads.health(api.correlation_id, api.deadline)


@app.get("/v1/offers/states", **route_docs("GET /v1/offers/states"))
def get_states(
    offer_ids: OfferIdsQuery,
    collector_number: CollectorNumberHeader = None,
    local_time: LocalTimeHeader = None,
) -> OfferStatesAnswer:
    return reads.get_states(api.call_context(collector_number), offer_ids, local_time)


@app.get("/v1/offers/states/find", **route_docs("GET /v1/offers/states/find"))
def find_states(
    query: Annotated[FindQuery, Query()],
    collector_number: CollectorNumberHeader = None,
    local_time: LocalTimeHeader = None,
) -> FindAnswer:
    return reads.find_states(api.call_context(collector_number), query, local_time)


@app.get("/v1/offers/states/count", **route_docs("GET /v1/offers/states/count"))
def count_states(
    query: Annotated[CountQuery, Query()],
    collector_number: CollectorNumberHeader = None,
    local_time: LocalTimeHeader = None,
) -> CountAnswer:
    return reads.count_states(api.call_context(collector_number), query, local_time)


# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: the raw event holds the bearer token.
@logger.inject_lambda_context(clear_state=True, log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return api.handle(event, context)
