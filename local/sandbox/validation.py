"""The Offer State API's input rules: collector numbers, query parameters and the PUT body.

Each parser turns raw input into a small value or raises ApiError(400). Messages never echo
the value they refuse (it may be a collector number).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from local.sandbox.messages import ApiError
from local.sandbox.seed import REGIONS, STATE_VALUES
from local.sandbox.store import Entry

# [0-9], not \d: \d also matches non-ASCII digits.
COLLECTOR_RE = re.compile(r"[0-9]{11}")
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
INTEGER_RE = re.compile(r"[0-9]{1,9}")

MAX_OFFER_IDS = 100
MAX_STATE_CHANGES = 100
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
SORT_KEYS = ("updatedAt", "offerId", "partnerId")
# `state` filter pairs FIND and COUNT accept.
FILTER_PAIRS = frozenset((name, value) for name, values in STATE_VALUES.items() for value in values)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def is_collector_number(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and COLLECTOR_RE.fullmatch(value) is not None


def is_uuid(value: Any) -> bool:
    return isinstance(value, str) and UUID_RE.fullmatch(value) is not None


def _split(values: list[str]) -> list[str]:
    # Repeated parameters and comma-separated lists mean the same thing.
    return [piece.strip() for value in values for piece in value.split(",")]


def _single(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if values is None:
        return None
    if len(values) != 1:
        raise bad_request(f"Query parameter {name} may be given only once.")
    return values[0]


def _boolean(query: dict[str, list[str]], name: str) -> bool | None:
    value = _single(query, name)
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise bad_request(f"Query parameter {name} must be true or false.")
    return value.lower() == "true"


def _integer(query: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    value = _single(query, name)
    if value is None:
        return default
    if not INTEGER_RE.fullmatch(value) or not low <= int(value) <= high:
        raise bad_request(f"Query parameter {name} must be an integer from {low} to {high}.")
    return int(value)


def parse_offer_ids(query: dict[str, list[str]]) -> list[str]:
    """GET's `offerId` list: 1 to 100 UUIDs, lower-cased, duplicates folded, order kept."""
    pieces = _split(query.get("offerId", []))
    if not pieces:
        raise bad_request("At least one offerId is required.")
    if not all(is_uuid(piece) for piece in pieces):
        raise bad_request("Every offerId must be a UUID.")
    ids = list(dict.fromkeys(piece.lower() for piece in pieces))
    if len(ids) > MAX_OFFER_IDS:
        raise bad_request(f"At most {MAX_OFFER_IDS} offerId values are allowed.")
    return ids


@dataclass(frozen=True)
class Filters:
    """FIND and COUNT filters; `states` None means: any SAVED or OPTED_IN state."""

    states: frozenset[tuple[str, str]] | None
    partner_id: str | None
    region: str | None

    def matches(self, entry: Entry) -> bool:
        if not entry.visible:
            return False
        if self.partner_id is not None and entry.offer.partner_id != self.partner_id:
            return False
        if self.region is not None and self.region not in entry.offer.regions:
            return False
        # Without `state`, visible already means "has a SAVED or OPTED_IN state".
        return self.states is None or any(pair in self.states for pair in entry.pairs())


def _pair(piece: str) -> tuple[str, str]:
    name, _, value = piece.partition(":")
    return name, value


def parse_filters(query: dict[str, list[str]]) -> Filters:
    """`state` (NAME:VALUE, OR-ed), `partnerId` (UUID) and `region` (province code)."""
    states = None
    if "state" in query:
        pairs = [_pair(piece) for piece in _split(query["state"])]
        if not pairs or any(pair not in FILTER_PAIRS for pair in pairs):
            allowed = ", ".join(sorted(f"{n}:{v}" for n, v in FILTER_PAIRS))
            raise bad_request(f"Query parameter state must be one of {allowed}.")
        states = frozenset(pairs)
    partner_id = _single(query, "partnerId")
    if partner_id is not None:
        if not is_uuid(partner_id):
            raise bad_request("Query parameter partnerId must be a UUID.")
        partner_id = partner_id.lower()
    region = _single(query, "region")
    if region is not None and region not in REGIONS:
        raise bad_request("Query parameter region must be a Canadian province or territory code.")
    return Filters(states, partner_id, region)


def _sort_value(key: str, entry: Entry) -> Any:
    if key == "updatedAt":
        return entry.updated_at
    if key == "partnerId":
        return entry.offer.partner_id
    return entry.offer.offer_id


@dataclass(frozen=True)
class FindQuery:
    """A validated FIND: filters, two sort keys, one page."""

    filters: Filters
    sort: tuple[tuple[str, bool], ...]
    page_number: int
    page_size: int

    def order(self, entries: list[Entry]) -> list[Entry]:
        # Stable sorts from the least significant key up; offerId ascending breaks ties.
        ordered = sorted(entries, key=lambda entry: entry.offer.offer_id)
        for key, descending in reversed(self.sort):
            ordered.sort(key=functools.partial(_sort_value, key), reverse=descending)
        return ordered

    def page(self, entries: list[Entry]) -> list[Entry]:
        start = self.page_number * self.page_size
        return entries[start : start + self.page_size]


def _sort_key(query: dict[str, list[str]], name: str, default: str) -> tuple[str, bool]:
    key = _single(query, f"{name}SortBy")
    if key is not None and key not in SORT_KEYS:
        raise bad_request(f"Query parameter {name}SortBy must be one of {', '.join(SORT_KEYS)}.")
    key = key or default
    descending = _boolean(query, f"{name}SortByDescending")
    # Newest first is the natural order for a timestamp; ids sort ascending unless asked.
    return key, (key == "updatedAt") if descending is None else descending


def parse_find(query: dict[str, list[str]]) -> FindQuery:
    """FIND's parameters; defaults: updatedAt descending, offerId ascending, page 0 of 20."""
    filters = parse_filters(query)
    sort = (_sort_key(query, "first", "updatedAt"), _sort_key(query, "second", "offerId"))
    page_number = _integer(query, "pageNumber", 0, 0, 999_999_999)
    page_size = _integer(query, "pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    return FindQuery(filters, sort, page_number, page_size)


def parse_state_changes(payload: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    """PUT's `stateChanges`: 1 to 100 entries, each a UUID and a non-empty list of states."""
    if not isinstance(payload, dict):
        raise bad_request("The body must be a JSON object.")
    changes = payload.get("stateChanges")
    if not isinstance(changes, list) or not changes:
        raise bad_request("stateChanges must be a non-empty list.")
    if len(changes) > MAX_STATE_CHANGES:
        raise bad_request(f"At most {MAX_STATE_CHANGES} stateChanges are allowed.")
    parsed = []
    for change in changes:
        if not isinstance(change, dict) or not is_uuid(change.get("offerId")):
            raise bad_request("Every state change needs an offerId that is a UUID.")
        states = change.get("states")
        if not isinstance(states, list) or not states:
            raise bad_request("Every state change needs a non-empty list of states.")
        pairs = []
        for state in states:
            name = state.get("name") if isinstance(state, dict) else None
            value = state.get("value") if isinstance(state, dict) else None
            if not isinstance(name, str) or value not in STATE_VALUES.get(name, ()):
                raise bad_request(
                    "Every state must be SAVE with SAVED or UNSAVED, or OPT_IN with OPTED_IN."
                )
            pairs.append((name, value))
        parsed.append((change["offerId"].lower(), pairs))
    return parsed
