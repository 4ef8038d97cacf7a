"""What AIR MILES answers: offer states, FIND and COUNT results, health, error bodies, and
the token endpoint's answer.

Tolerant, as the upstream page asks: unknown fields are ignored, absent paging totals
accepted. Every class is named `AirMiles...` so that it is never taken for a partner answer.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from offer_state import upstream


def _check_timestamp(value: str | None) -> str | None:
    # Kept as the upstream string (microseconds and `Z`), but it must be a real instant.
    if value is not None:
        datetime.fromisoformat(value)
    return value


Timestamp = Annotated[str, AfterValidator(_check_timestamp)]


class _AirMilesAnswer(BaseModel):
    """Base of what AIR MILES answers: unknown fields ignored. Validators are built on first
    use (`defer_build`): a cold start that never calls AIR MILES (health aside) does not pay."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class AirMilesOfferState(_AirMilesAnswer):
    """One state of one offer as AIR MILES reports it."""

    name: str
    value: str
    properties: dict[str, Any] | None = None  # free-form: its samples show only {}
    updated_at: Timestamp | None = Field(default=None, alias="updatedAt")


class AirMilesOfferStates(_AirMilesAnswer):
    """An offer and the collector's states on it (an entry of FIND and GET)."""

    offer_id: UUID = Field(alias="offerId")
    collector_id: str | None = Field(default=None, alias="collectorId")
    states: list[AirMilesOfferState] = Field(default_factory=list)


class AirMilesGetResult(_AirMilesAnswer):
    """GET's answer."""

    offers: list[AirMilesOfferStates] = Field(default_factory=list)


class AirMilesFindResult(_AirMilesAnswer):
    """FIND's answer; the paging totals are [assumed] and may be absent."""

    offers: list[AirMilesOfferStates] = Field(default_factory=list)
    page_number: int | None = Field(default=None, alias="pageNumber")
    page_size: int | None = Field(default=None, alias="pageSize")
    total_count: int | None = Field(default=None, alias="totalCount")


class AirMilesCountResult(_AirMilesAnswer):
    count: int = Field(ge=0, alias=upstream.COUNT_FIELD)


class AirMilesHealthStatus(_AirMilesAnswer):
    healthy: bool
    timestamp: Timestamp | None = None


@cache
def airmiles_health_result() -> TypeAdapter[list[AirMilesHealthStatus]]:
    """Health's answer is a JSON array (built on first use, like the other answers)."""
    return TypeAdapter(list[AirMilesHealthStatus])


class AirMilesErrorBody(_AirMilesAnswer):
    """An AIR MILES error body [assumed shape]; everything optional."""

    response_code: str | None = Field(default=None, alias=upstream.ERROR_CODE_FIELD)
    message: str | None = None


class AirMilesTokenResult(_AirMilesAnswer):
    """The token endpoint's answer."""

    access_token: Annotated[str, StringConstraints(min_length=1)]
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a secret
    expires_in: int | None = Field(default=None, gt=0)


class AirMilesTokenErrorBody(_AirMilesAnswer):
    """The token endpoint's (Auth0-style) error body."""

    error: str | None = None
    error_description: str | None = None


def build_validators() -> None:
    """Build now every answer validator that is otherwise built on first use (before a
    SnapStart snapshot: restored environments then start with them)."""
    answers: list[type[_AirMilesAnswer]] = [_AirMilesAnswer]
    while answers:
        model = answers.pop()
        model.model_rebuild()
        answers.extend(model.__subclasses__())
    airmiles_health_result()
