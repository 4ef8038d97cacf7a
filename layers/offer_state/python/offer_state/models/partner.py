"""The partner API's answers and bodies: the published contract.

Field names are the JSON names, and class names are the schema names of openapi.json. The
PUT bodies and the FIND and COUNT queries are AIR MILES's own request shapes
(`airmiles_requests`); `StatesBody` is the one body of our own.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from offer_state.models.airmiles_requests import StateChangeItems, StateName, StateValue


class _PartnerModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _is_none(value: object) -> bool:
    return value is None


def _omitted_when_none() -> Any:
    """An optional answer field that is left out, not sent as null. (`Any`, as pydantic's
    `Field` returns: it stands for the field's default.)"""
    return Field(default=None, exclude_if=_is_none)


class StateView(_PartnerModel):
    name: str
    value: str
    updatedAt: str | None = _omitted_when_none()


class OfferStateView(_PartnerModel):
    """One offer as the partner app labels it."""

    offerId: UUID
    optedIn: bool
    saved: bool
    states: list[StateView]


class OfferStatesAnswer(_PartnerModel):
    """`GET /v1/offers/states`: every offer asked for, in the order asked."""

    offers: list[OfferStateView]


class FindAnswer(_PartnerModel):
    """`GET /v1/offers/states/find`: a page of saved or opted-in offers."""

    offers: list[OfferStateView]
    pageNumber: int
    pageSize: int
    totalCount: int | None = _omitted_when_none()


class CountAnswer(_PartnerModel):
    count: int


class UpstreamHealth(_PartnerModel):
    healthy: bool
    timestamp: str | None = _omitted_when_none()


class HealthAnswer(_PartnerModel):
    """`GET /health`: the gateway is up, and what AIR MILES said (cached up to 30 s)."""

    status: Literal["ok", "degraded"]
    upstream: UpstreamHealth
    checkedAt: str


class StatesBody(_PartnerModel):
    """`PUT /v1/offers/{offerId}/states` body."""

    states: StateChangeItems


class AppliedState(_PartnerModel):
    name: StateName
    value: StateValue
    updatedAt: str


class AppliedChange(_PartnerModel):
    offerId: UUID
    states: list[AppliedState]


class AppliedChanges(_PartnerModel):
    """A PUT's answer: the changes as applied."""

    stateChanges: list[AppliedChange]


class ErrorDetail(_PartnerModel):
    field: str | None = _omitted_when_none()
    message: str


class ErrorInfo(_PartnerModel):
    code: str
    message: str
    details: list[ErrorDetail] | None = _omitted_when_none()


class ErrorAnswer(_PartnerModel):
    """Every error of every route: a stable code, a sentence, field details, the correlation id."""

    error: ErrorInfo
    correlationId: str


class GatewayMessage(_PartnerModel):
    """What API Gateway itself answers (401, and 404 for a route it does not know)."""

    message: str
