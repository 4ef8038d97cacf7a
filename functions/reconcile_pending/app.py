"""reconcile-pending: on a schedule, records UNKNOWN on the audit items left PENDING past the
write function's Timeout. Thin: the work is the layer's (offer_state/reconcile.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from offer_state.observability import logger, metrics, tracer
from offer_state.reconcile import PendingReconciler, ReconcilerSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = ReconcilerSettings.from_env()  # read once, at cold start
# Nobody waits on this function: patient timeouts, botocore's standard retries.
dynamodb = boto3.client(
    "dynamodb", config=Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard"})
)
reconciler = PendingReconciler(dynamodb, settings.audit_table, settings.stale_after)


@logger.inject_lambda_context(clear_state=True, log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    done = reconciler.run(time_left=lambda: context.get_remaining_time_in_millis() / 1000)
    return {
        "reconciled": done.reconciled,
        "finishedMeanwhile": done.finished_meanwhile,
        "complete": done.complete,
    }
