"""The sandbox's deterministic seed: the offer catalogue and the collectors' starting states.

Every id is a uuid5 of a fixed namespace, so the same offers, partners and states exist on
every start and after every reset. The catalogue's first 40 offers (``FRESH_OFFERS``) are
never in the seed: a test that needs an offer nobody has touched takes one from there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

SEED_NAMESPACE = uuid.UUID("6f1d2c3b-8a4e-5f60-9b7c-0d1e2f3a4b5c")

# Province and territory codes, the values FIND's `region` filter accepts.
REGIONS = ("AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT")

PARTNER_IDS = tuple(str(uuid.uuid5(SEED_NAMESPACE, f"partner:{n}")) for n in range(1, 5))

CATALOGUE_SIZE = 80
FRESH_COUNT = 40

# The state names and the values each one allows (there is no opt-out).
STATE_VALUES = {"OPT_IN": ("OPTED_IN",), "SAVE": ("SAVED", "UNSAVED")}
# Entries list their states in this order.
STATE_ORDER = ("OPT_IN", "SAVE")


@dataclass(frozen=True)
class Offer:
    """A catalogue offer: the attributes FIND filters and sorts on."""

    offer_id: str
    partner_id: str
    regions: tuple[str, ...]


def _regions(index: int) -> tuple[str, ...]:
    # Every fifth offer is national; the others run in one to three provinces.
    if index % 5 == 0:
        return REGIONS
    picked = {REGIONS[index % 13], REGIONS[(index * 7 + 3) % 13], REGIONS[(index * 3) % 13]}
    return tuple(r for r in REGIONS if r in picked)[: 1 + index % 3]


CATALOGUE: tuple[Offer, ...] = tuple(
    Offer(
        offer_id=str(uuid.uuid5(SEED_NAMESPACE, f"offer:{i:03d}")),
        partner_id=PARTNER_IDS[i % len(PARTNER_IDS)],
        regions=_regions(i),
    )
    for i in range(CATALOGUE_SIZE)
)
FRESH_OFFERS: tuple[Offer, ...] = CATALOGUE[:FRESH_COUNT]


def _at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _offer(index: int) -> str:
    return CATALOGUE[index].offer_id


# collector -> offer id -> state name -> (value, updatedAt); only offers from index 40 on.
SEED_STATES: dict[str, dict[str, dict[str, tuple[str, datetime]]]] = {
    # Three offers saved, two opted in, one of them both.
    "80000000110": {
        _offer(40): {
            "OPT_IN": ("OPTED_IN", _at("2026-01-05T10:15:30.123456Z")),
            "SAVE": ("SAVED", _at("2026-01-06T08:00:00.000001Z")),
        },
        _offer(41): {"SAVE": ("SAVED", _at("2026-01-07T12:30:45.654321Z"))},
        _offer(42): {"SAVE": ("SAVED", _at("2026-01-03T09:45:00.250000Z"))},
        _offer(43): {"OPT_IN": ("OPTED_IN", _at("2026-01-09T17:05:12.999999Z"))},
    },
    "80000000001": {
        _offer(50): {"SAVE": ("SAVED", _at("2026-02-01T11:00:00.100000Z"))},
        _offer(51): {"OPT_IN": ("OPTED_IN", _at("2026-02-02T11:00:00.200000Z"))},
        _offer(52): {"SAVE": ("SAVED", _at("2026-02-03T11:00:00.300000Z"))},
    },
    # One opt-in, and one offer whose only state is UNSAVED (it counts as having no state).
    "84095202006": {
        _offer(60): {"OPT_IN": ("OPTED_IN", _at("2026-03-10T14:20:00.424242Z"))},
        _offer(61): {"SAVE": ("UNSAVED", _at("2026-03-11T14:20:00.434343Z"))},
    },
}
