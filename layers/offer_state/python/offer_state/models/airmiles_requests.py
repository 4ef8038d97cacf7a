"""What we send AIR MILES: state changes, FIND and COUNT queries, offer ids, local time.

Strict: unknown fields, bad pairs and bad ids are refused before any call. The partner API
takes the same shapes (its PUT bodies, its FIND and COUNT queries), so these names are also
schema names of openapi.json.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from offer_state import upstream

StateName = Literal["SAVE", "OPT_IN"]
StateValue = Literal["SAVED", "UNSAVED", "OPTED_IN"]
SortField = Literal[upstream.SORT_FIELDS]  # type: ignore[valid-type]

MAX_STATE_CHANGES = 25  # our partner contract (docs/partner-api.md), not an upstream limit


def _check_pair(name: str, value: str) -> None:
    if value not in upstream.ALLOWED_STATES.get(name, ()):
        allowed = ", ".join(
            f"{n}:{v}" for n, values in upstream.ALLOWED_STATES.items() for v in sorted(values)
        )
        # The input is not echoed: error messages go back to callers and into logs.
        raise ValueError(f"not an allowed state pair (allowed: {allowed})")


class _AirMilesRequest(BaseModel):
    """Base of what we send: camelCase on the wire, snake_case in Python, nothing unknown."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class StatePair(_AirMilesRequest):
    """A state name with a value, e.g. `OPT_IN` = `OPTED_IN`; only the allowed pairs."""

    name: StateName
    value: StateValue

    @model_validator(mode="after")
    def _allowed_pair(self) -> StatePair:
        _check_pair(self.name, self.value)
        return self


class StateChangeItem(StatePair):
    """One state to set on one offer."""


def _one_value_per_name(states: list[StateChangeItem]) -> list[StateChangeItem]:
    names = [s.name for s in states]
    if len(set(names)) != len(names):
        raise ValueError("each state name may appear once per offer")
    return states


# The states to set on one offer: each state name at most once.
StateChangeItems = Annotated[
    list[StateChangeItem],
    Field(min_length=1, max_length=len(upstream.ALLOWED_STATES)),
    AfterValidator(_one_value_per_name),
]


class StateChange(_AirMilesRequest):
    """The states to set on one offer."""

    offer_id: UUID
    states: StateChangeItems


class StateChanges(_AirMilesRequest):
    """The body of a PUT: 1 to 25 offers, each named once."""

    state_changes: list[StateChange] = Field(min_length=1, max_length=MAX_STATE_CHANGES)

    @field_validator("state_changes")
    @classmethod
    def _one_change_per_offer(cls, changes: list[StateChange]) -> list[StateChange]:
        ids = [c.offer_id for c in changes]
        if len(set(ids)) != len(ids):
            raise ValueError("each offerId may appear once per request")
        return changes


class StateFilter(StatePair):
    """A FIND or COUNT filter, `NAME:VALUE` on the wire."""

    @classmethod
    def parse(cls, text: str) -> StateFilter:
        name, sep, value = text.partition(upstream.STATE_FILTER_SEPARATOR)
        if not sep:
            raise ValueError(f"a state filter is NAME{upstream.STATE_FILTER_SEPARATOR}VALUE")
        return cls(name=name, value=value)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.name}{upstream.STATE_FILTER_SEPARATOR}{self.value}"


def _region(value: str) -> str:
    if value not in upstream.REGIONS:
        raise ValueError(f"region must be one of {', '.join(sorted(upstream.REGIONS))}")
    return value


Region = Annotated[str, AfterValidator(_region)]


class CountQuery(_AirMilesRequest):
    """COUNT's filters (FIND takes the same, and more)."""

    state: tuple[StateFilter, ...] = ()
    partner_id: UUID | None = None
    region: Region | None = None

    @field_validator("state", mode="before")
    @classmethod
    def _parse_filters(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            return tuple(StateFilter.parse(v) if isinstance(v, str) else v for v in value)
        return value

    def to_params(self) -> list[tuple[str, str]]:
        """Query parameters in upstream form (repeated `state`, lower-case ids)."""
        params = [("state", str(f)) for f in self.state]
        if self.partner_id is not None:
            params.append(("partnerId", str(self.partner_id)))
        if self.region is not None:
            params.append(("region", self.region))
        return params


class FindQuery(CountQuery):
    """FIND's filters, sort and page."""

    first_sort_by: SortField | None = None
    first_sort_by_descending: bool | None = None
    second_sort_by: SortField | None = None
    second_sort_by_descending: bool | None = None
    page_number: int = Field(default=upstream.PAGE_NUMBER_FIRST, ge=upstream.PAGE_NUMBER_FIRST)
    page_size: int = Field(default=upstream.PAGE_SIZE_DEFAULT, ge=1, le=upstream.PAGE_SIZE_MAX)

    def to_params(self) -> list[tuple[str, str]]:
        params = super().to_params()
        for name in (
            "first_sort_by",
            "first_sort_by_descending",
            "second_sort_by",
            "second_sort_by_descending",
        ):
            value = getattr(self, name)
            if value is not None:
                text = str(value).lower() if isinstance(value, bool) else str(value)
                params.append((to_camel(name), text))
        params += [("pageNumber", str(self.page_number)), ("pageSize", str(self.page_size))]
        return params


def _split_ids(values: object) -> object:
    # GET takes ids repeated and/or comma-separated: "a,b" and ["a", "b"] mean the same.
    if isinstance(values, str | UUID):
        values = [values]
    if not isinstance(values, list | tuple):
        return values
    parts: list[object] = []
    for value in values:
        parts += value.split(",") if isinstance(value, str) else [value]
    return [p.strip() if isinstance(p, str) else p for p in parts]


def _distinct_within_limit(ids: list[UUID]) -> list[UUID]:
    # Duplicates are folded (first occurrence kept) so the answer follows the order asked.
    distinct = list(dict.fromkeys(ids))
    if len(distinct) > upstream.GET_MAX_OFFER_IDS:
        raise ValueError(f"at most {upstream.GET_MAX_OFFER_IDS} distinct offer ids")
    return distinct


OfferIdList = Annotated[
    list[UUID],
    BeforeValidator(_split_ids),
    Field(min_length=1),
    AfterValidator(_distinct_within_limit),
]


@cache
def _offer_ids() -> TypeAdapter[list[UUID]]:
    return TypeAdapter(OfferIdList)


def parse_offer_ids(values: object) -> list[UUID]:
    """1 to 100 distinct offer ids, from a list and/or comma-separated strings."""
    return _offer_ids().validate_python(values)


def _local_time(value: str) -> str:
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%S")  # a wall-clock time: no zone
    except ValueError:
        raise ValueError("not a real date and time") from None  # no echo of the input
    return value


# The `X-Local-Time` we pass on: upstream's form, and a real date and time.
LocalTime = Annotated[
    str,
    StringConstraints(pattern=upstream.LOCAL_TIME_PATTERN),
    AfterValidator(_local_time),
]
