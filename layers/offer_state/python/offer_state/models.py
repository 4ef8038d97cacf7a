"""Pydantic models of the AIR MILES Offer State API: what we send and what it answers.

Requests are strict (unknown fields, bad pairs and bad ids are refused before any call);
answers are tolerant (unknown fields ignored, absent paging totals accepted), as the
upstream page asks.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal
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
CollectorNumber = Annotated[str, StringConstraints(pattern=upstream.COLLECTOR_NUMBER_PATTERN)]

MAX_STATE_CHANGES = 25  # our partner contract (DESIGN.md), not an upstream limit


def _check_pair(name: str, value: str) -> None:
    if value not in upstream.ALLOWED_STATES.get(name, ()):
        allowed = ", ".join(
            f"{n}:{v}" for n, values in upstream.ALLOWED_STATES.items() for v in sorted(values)
        )
        # The input is not echoed: error messages go back to callers and into logs.
        raise ValueError(f"not an allowed state pair (allowed: {allowed})")


def _check_timestamp(value: str | None) -> str | None:
    # Kept as the upstream string (microseconds and `Z`), but it must be a real instant.
    if value is not None:
        datetime.fromisoformat(value)
    return value


Timestamp = Annotated[str, AfterValidator(_check_timestamp)]


class _Request(BaseModel):
    """Base of what we send: camelCase on the wire, snake_case in Python, nothing unknown."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class _Answer(BaseModel):
    """Base of what AIR MILES answers: unknown fields ignored. Validators are built on first
    use (`defer_build`): a cold start that never calls AIR MILES (health aside) does not pay."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


# ---------------------------------------------------------------- requests


class StatePair(_Request):
    """A state name with a value, e.g. `OPT_IN` = `OPTED_IN`; only the allowed pairs."""

    name: StateName
    value: StateValue

    @model_validator(mode="after")
    def _allowed_pair(self) -> StatePair:
        _check_pair(self.name, self.value)
        return self


class StateChangeItem(StatePair):
    """One state to set on one offer."""


class StateChange(_Request):
    """The states to set on one offer."""

    offer_id: UUID
    states: list[StateChangeItem] = Field(min_length=1, max_length=len(upstream.ALLOWED_STATES))

    @field_validator("states")
    @classmethod
    def _one_value_per_name(cls, states: list[StateChangeItem]) -> list[StateChangeItem]:
        names = [s.name for s in states]
        if len(set(names)) != len(names):
            raise ValueError("each state name may appear once per offer")
        return states


class StateChanges(_Request):
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


class CountQuery(_Request):
    """COUNT's filters (FIND takes the same, and more)."""

    state: tuple[StateFilter, ...] = ()
    partner_id: UUID | None = None
    region: Region | None = None

    @field_validator("state", mode="before")
    @classmethod
    def _parse_filters(cls, value: Any) -> Any:
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


def _split_ids(values: Any) -> Any:
    # GET takes ids repeated and/or comma-separated: "a,b" and ["a", "b"] mean the same.
    if isinstance(values, str | UUID):
        values = [values]
    if not isinstance(values, list | tuple):
        return values
    parts: list[Any] = []
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


def parse_offer_ids(values: Any) -> list[UUID]:
    """1 to 100 distinct offer ids, from a list and/or comma-separated strings."""
    return _offer_ids().validate_python(values)


# ---------------------------------------------------------------- answers


class OfferState(_Answer):
    """One state of one offer as AIR MILES reports it."""

    name: str
    value: str
    properties: dict[str, Any] | None = None
    updated_at: Timestamp | None = Field(default=None, alias="updatedAt")


class OfferStates(_Answer):
    """An offer and the collector's states on it (an entry of FIND and GET)."""

    offer_id: UUID = Field(alias="offerId")
    collector_id: str | None = Field(default=None, alias="collectorId")
    states: list[OfferState] = Field(default_factory=list)


class OfferStatesPage(_Answer):
    """GET's answer."""

    offers: list[OfferStates] = Field(default_factory=list)


class FindResult(_Answer):
    """FIND's answer; the paging totals are [assumed] and may be absent."""

    offers: list[OfferStates] = Field(default_factory=list)
    page_number: int | None = Field(default=None, alias="pageNumber")
    page_size: int | None = Field(default=None, alias="pageSize")
    total_count: int | None = Field(default=None, alias="totalCount")


class CountResult(_Answer):
    count: int = Field(ge=0, alias=upstream.COUNT_FIELD)


class HealthStatus(_Answer):
    healthy: bool
    timestamp: Timestamp | None = None


@cache
def health_answer() -> TypeAdapter[list[HealthStatus]]:
    """Health's answer is a JSON array (built on first use, like the other answers)."""
    return TypeAdapter(list[HealthStatus])


class UpstreamErrorBody(_Answer):
    """An AIR MILES error body [assumed shape]; everything optional."""

    response_code: str | None = Field(default=None, alias=upstream.ERROR_CODE_FIELD)
    message: str | None = None


class TokenAnswer(_Answer):
    """The token endpoint's answer."""

    access_token: Annotated[str, StringConstraints(min_length=1)]
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a secret
    expires_in: int | None = Field(default=None, gt=0)


class TokenErrorBody(_Answer):
    """An Auth0-style error body."""

    error: str | None = None
    error_description: str | None = None


# ---------------------------------------------------------------- the partner API (DESIGN.md)
# Field names are the JSON names: these models are the partner-facing contract.


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _is_none(value: Any) -> bool:
    return value is None


def _omitted_when_none() -> Any:
    """An optional answer field that is left out, not sent as null."""
    return Field(default=None, exclude_if=_is_none)


class StateView(_Shape):
    name: str
    value: str
    updatedAt: str | None = _omitted_when_none()


class OfferStateView(_Shape):
    """One offer as the partner app labels it."""

    offerId: UUID
    optedIn: bool
    saved: bool
    states: list[StateView]

    @classmethod
    def of(cls, offer_id: UUID, entry: OfferStates | None) -> OfferStateView:
        states = entry.states if entry is not None else []
        pairs = {(s.name, s.value) for s in states}
        return cls(
            offerId=offer_id,
            optedIn=("OPT_IN", "OPTED_IN") in pairs,
            saved=("SAVE", "SAVED") in pairs,
            states=[StateView(name=s.name, value=s.value, updatedAt=s.updated_at) for s in states],
        )


class OfferStatesAnswer(_Shape):
    """`GET /v1/offers/states`: every offer asked for, in the order asked."""

    offers: list[OfferStateView]


class FindAnswer(_Shape):
    """`GET /v1/offers/states/find`: a page of saved or opted-in offers."""

    offers: list[OfferStateView]
    pageNumber: int
    pageSize: int
    totalCount: int | None = _omitted_when_none()


class CountAnswer(_Shape):
    count: int


class UpstreamHealth(_Shape):
    healthy: bool
    timestamp: str | None = _omitted_when_none()


class HealthAnswer(_Shape):
    """`GET /health`: the gateway is up, and what AIR MILES said (cached up to 30 s)."""

    status: Literal["ok", "degraded"]
    upstream: UpstreamHealth
    checkedAt: str


def _local_time(value: str) -> str:
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%S")  # a wall-clock time: no zone
    except ValueError:
        raise ValueError("not a real date and time") from None  # no echo of the input
    return value


# `X-Local-Time`: the caller's wall-clock time, no zone, seconds [doc].
LOCAL_TIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$"
LocalTime = Annotated[
    str,
    StringConstraints(pattern=LOCAL_TIME_PATTERN),
    AfterValidator(_local_time),
]


class StatesBody(_Shape):
    """`PUT /v1/offers/{offerId}/states` body."""

    states: list[StateChangeItem] = Field(min_length=1, max_length=len(upstream.ALLOWED_STATES))

    @field_validator("states")
    @classmethod
    def _one_value_per_name(cls, states: list[StateChangeItem]) -> list[StateChangeItem]:
        return StateChange._one_value_per_name(states)


class AppliedState(_Shape):
    name: StateName
    value: StateValue
    updatedAt: str


class AppliedChange(_Shape):
    offerId: UUID
    states: list[AppliedState]


class AppliedChanges(_Shape):
    """A PUT's answer: the changes as applied."""

    stateChanges: list[AppliedChange]


class ErrorDetail(_Shape):
    field: str | None = _omitted_when_none()
    message: str


class ErrorInfo(_Shape):
    code: str
    message: str
    details: list[ErrorDetail] | None = _omitted_when_none()


class ErrorAnswer(_Shape):
    """Every error of every route (DESIGN.md, "Errors")."""

    error: ErrorInfo
    correlationId: str


class GatewayMessage(_Shape):
    """What API Gateway itself answers (401, and 404 for a route it does not know)."""

    message: str
