"""The token refresher, the one writer of the deployment's AIR MILES token, on its schedule and
when a function asks (`refusedTokenId`: a token refused or not decryptable). It fetches only a
token due (none, past `refreshAt`, the one refused), under a claim (a conditional write: no
unexpired claim, `tokenId` unchanged; lasting the run's time left) so that overlapping runs fetch
once. Each run emits `StoredTokenOverdueSeconds` (0 while fresh, a day without a token).
The scheme: docs/architecture.md, "One AIR MILES token per deployment"."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from offer_state.auth import TokenProvider
from offer_state.observability import dimensioned, logger
from offer_state.service import OfferStateService
from offer_state.token_store import StoredToken, TokenStoreError, token_id
from offer_state.transport import Transport

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

NO_TOKEN_OVERDUE = 86400.0


def refresh_time(issued_at: float, expires_at: float) -> float:
    return expires_at - min(3600.0, (expires_at - issued_at) / 5)


class TokenRefresher:
    def __init__(self, service: OfferStateService) -> None:
        settings = service.settings.client
        store = service.token_store(patient=True)
        assert store is not None, "TOKEN_TABLE_NAME and TOKEN_KEY_ID name the token store"
        self._service, self.store = service, store
        self.tokens = TokenProvider(
            settings, Transport(settings), lambda force: service.secrets.credentials(force)
        )

    def run(
        self, event: dict[str, Any], context: LambdaContext, wall: Callable[[], float] = time.time
    ) -> dict[str, object]:
        """One run, on the schedule's `event` or a function's ask: its outcome (JSON)."""
        refused = event.get("refusedTokenId")
        deadline = self._service.deadline(context)
        with deadline.current():
            stored, now = self.store.read(consistent=True), wall()
            outcome = "fresh"
            if not stored.whole or now >= stored.refresh_at or stored.token_id == refused:
                owner, outcome = uuid.uuid4().hex, "claimed by another run"
                if self.store.claim(owner, now, now + deadline.final.remaining(), stored):
                    try:
                        token, issued, expires = self.tokens.fetch(deadline.upstream)
                        times = (issued, expires, refresh_time(issued, expires))
                        written = self.store.publish(owner, token, times)
                    except BaseException:
                        with contextlib.suppress(TokenStoreError):
                            self.store.release(owner)
                        raise
                    outcome = "refreshed" if written else "claim lost"
                    stored = StoredToken(token_id(token), b"-", *times)
        overdue = max(0.0, wall() - stored.refresh_at) if stored.whole else NO_TOKEN_OVERDUE
        dimensioned("StoredTokenOverdueSeconds", MetricUnit.Seconds, overdue, {})
        answer: dict[str, object] = {
            "outcome": outcome,
            "tokenId": stored.token_id,
            "overdueSeconds": overdue,
        }
        logger.info(f"token refresher: {outcome}", extra={**answer, "refusedTokenId": refused})
        return answer
