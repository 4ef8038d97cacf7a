"""The sandbox's thread-safe state: the catalogue and every collector's offer states."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from local.sandbox.seed import CATALOGUE, SEED_STATES, STATE_ORDER, Offer


def iso_micro(moment: datetime) -> str:
    """UTC with microseconds and `Z`, as AIR MILES writes `updatedAt`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Entry:
    """One offer's states for one collector, copied out of the store."""

    offer: Offer
    collector: str
    states: dict[str, tuple[str, datetime]]

    @property
    def visible(self) -> bool:
        # An offer whose only state is SAVE:UNSAVED counts as having no state.
        return any(pair != ("SAVE", "UNSAVED") for pair in self.pairs())

    @property
    def updated_at(self) -> datetime:
        return max(moment for _, moment in self.states.values())

    def pairs(self) -> list[tuple[str, str]]:
        return [(name, value) for name, (value, _) in self.states.items()]

    def to_json(self) -> dict[str, Any]:
        """The AIR MILES entry; empty fields (`properties`) are left out, as upstream does."""
        states = [
            {
                "name": name,
                "value": self.states[name][0],
                "updatedAt": iso_micro(self.states[name][1]),
            }
            for name in STATE_ORDER
            if name in self.states
        ]
        return {"offerId": self.offer.offer_id, "collectorId": self.collector, "states": states}


class OfferStore:
    """Catalogue plus states; every read copies under the lock, every batch applies under it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._catalogue = {offer.offer_id: offer for offer in CATALOGUE}
        self._states: dict[str, dict[str, dict[str, tuple[str, datetime]]]] = {}
        self.reset()

    def reset(self) -> None:
        """Back to the seed."""
        with self._lock:
            self._states = copy.deepcopy(SEED_STATES)

    def offer_ids(self) -> list[str]:
        return list(self._catalogue)

    def knows(self, offer_id: str) -> bool:
        return offer_id in self._catalogue

    def entries(self, collector: str, *, include_hidden: bool = False) -> list[Entry]:
        """The collector's entries in catalogue order; UNSAVED-only ones only if asked."""
        with self._lock:
            stored = copy.deepcopy(self._states.get(collector, {}))
        found = [
            Entry(offer, collector, stored[offer_id])
            for offer_id, offer in self._catalogue.items()
            if stored.get(offer_id)
        ]
        return [entry for entry in found if include_hidden or entry.visible]

    def apply(self, collector: str, changes: list[tuple[str, list[tuple[str, str]]]]) -> datetime:
        """Writes a validated batch atomically; every write stamps `updatedAt` with now."""
        with self._lock:
            now = datetime.now(UTC)
            offers = self._states.setdefault(collector, {})
            for offer_id, pairs in changes:
                states = offers.setdefault(offer_id, {})
                for name, value in pairs:
                    states[name] = (value, now)
            return now
