"""token-refresher: the one writer of the deployment's AIR MILES token, on its schedule and when
a function asks. Thin: the work is the layer's (offer_state/refresher.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from offer_state.observability import logger, tracer
from offer_state.refresher import TokenRefresher
from offer_state.service import OfferStateService

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

refresher = TokenRefresher(OfferStateService.from_env())  # settings read once; clients on first use


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, object]:
    return refresher.run(event, context)
