"""The AIR MILES Offer State API client: health, FIND, GET, COUNT, PUT.

Usable on its own, outside Lambda:

    import os

    from offer_state.client import Collector, OfferStateClient
    from offer_state.config import ClientCredentials, ClientSettings

    client = OfferStateClient(
        ClientSettings.for_environment("uat", origin_client="external:acme:web"),
        ClientCredentials(  # from wherever your secrets live, never from the code
            client_id=os.environ["AIRMILES_CLIENT_ID"],
            client_secret=os.environ["AIRMILES_CLIENT_SECRET"],
            audience=os.environ["AIRMILES_AUDIENCE"],
        ),
    )
    states = client.get(Collector("80000000110"), ["951d9a70-4cf8-41b1-a01e-7953f069f527"])

A call is made either on behalf of a collector with the partner's machine token
(`Collector(number)`) or with the member's own bearer token (`MemberToken(token)`):
offer_state.callers.

Every call ends by its `deadline` (by default the whole `total_budget` from the call), its
token fetch and retries included (offer_state.transport).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar
from uuid import UUID

import requests
from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from offer_state import upstream
from offer_state.auth import CredentialsSource, TokenObserver, TokenProvider
from offer_state.auth_flow import AuthFlow
from offer_state.callers import Caller, Collector, MemberToken
from offer_state.config import ClientCredentials, ClientSettings
from offer_state.errors import (
    OfferStateError,
    UpstreamError,
    ValidationError,
    error_for_upstream_status,
    unknown_outcome,
    validation_details,
)
from offer_state.models.airmiles_answers import (
    AirMilesCountResult,
    AirMilesErrorBody,
    AirMilesFindResult,
    AirMilesGetResult,
    AirMilesHealthStatus,
    AirMilesOfferStates,
    airmiles_health_result,
)
from offer_state.models.airmiles_requests import (
    CountQuery,
    FindQuery,
    StateChange,
    StateChanges,
    parse_offer_ids,
)
from offer_state.token_store import TokenStore
from offer_state.transport import (
    CallObserver,
    Deadline,
    RequestData,
    Transport,
    outcome_unknown_status,
)

__all__ = ["Caller", "Collector", "MemberToken", "OfferStateClient"]

_JSON_VALUE: TypeAdapter[Any] = TypeAdapter(Any)  # any JSON at all: a 200's body is only parsed
_LOCAL_TIME = re.compile(upstream.LOCAL_TIME_PATTERN)

AnswerT = TypeVar("AnswerT", bound=BaseModel)
ParsedT = TypeVar("ParsedT")
InputT = TypeVar("InputT")


class OfferStateClient:
    """One instance per process (or Lambda container): it pools connections and caches
    the token, read from `token_store` where one is given (offer_state.auth). Thread-safe.
    An `observer` that is also a `TokenObserver` is told about the store too."""

    def __init__(
        self,
        settings: ClientSettings,
        credentials: ClientCredentials | CredentialsSource | None = None,
        *,
        session: requests.Session | None = None,
        observer: CallObserver | None = None,
        token_store: TokenStore | None = None,
    ) -> None:
        self.settings = settings
        self.transport = Transport(settings, session=session, observer=observer)
        # Without credentials only member-token calls are possible.
        tokens = (
            TokenProvider(
                settings,
                self.transport,
                credentials,
                store=token_store,
                observer=observer if isinstance(observer, TokenObserver) else None,
            )
            if credentials is not None
            else None
        )
        self.auth = AuthFlow(self.transport, tokens)

    @property
    def tokens(self) -> TokenProvider | None:
        """The machine token's provider (None without credentials)."""
        return self.auth.tokens

    @tokens.setter
    def tokens(self, tokens: TokenProvider | None) -> None:
        self.auth.tokens = tokens

    def __enter__(self) -> OfferStateClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    # ------------------------------------------------------------ endpoints

    def health(
        self,
        caller: MemberToken | None = None,
        *,
        correlation_id: str | UUID | None = None,
        deadline: Deadline | None = None,
    ) -> list[AirMilesHealthStatus]:
        """`GET /offers/state-reader/health` (needs a valid token, names no collector)."""
        correlation = _correlation_id(correlation_id)
        response = self._call(
            "health", "GET", self.settings.health_path, caller, correlation, deadline=deadline
        )
        return _parse(response, correlation, airmiles_health_result().validate_json)

    def get(
        self,
        caller: Caller,
        offer_ids: Iterable[str | UUID] | str,
        *,
        correlation_id: str | UUID | None = None,
        local_time: str | None = None,
        deadline: Deadline | None = None,
    ) -> list[AirMilesOfferStates]:
        """The states of the offers listed (1 to 100); offers without a state are absent."""
        ids = _validated(
            parse_offer_ids, offer_ids if isinstance(offer_ids, str) else list(offer_ids)
        )
        params = [("offerId", str(i)) for i in ids]
        return self._read(
            "get", caller, params, AirMilesGetResult, correlation_id, local_time, deadline, set(ids)
        ).offers

    def find(
        self,
        caller: Caller,
        query: FindQuery | None = None,
        *,
        correlation_id: str | UUID | None = None,
        local_time: str | None = None,
        deadline: Deadline | None = None,
    ) -> AirMilesFindResult:
        """Every offer the collector has saved or opted into, a page at a time."""
        params = (query or FindQuery()).to_params()
        return self._read(
            "find", caller, params, AirMilesFindResult, correlation_id, local_time, deadline
        )

    def count(
        self,
        caller: Caller,
        query: CountQuery | None = None,
        *,
        correlation_id: str | UUID | None = None,
        local_time: str | None = None,
        deadline: Deadline | None = None,
    ) -> int:
        """How many offers the collector has saved or opted into (filters as FIND)."""
        params = (query or CountQuery()).to_params()
        return self._read(
            "count", caller, params, AirMilesCountResult, correlation_id, local_time, deadline
        ).count

    def put(
        self,
        caller: Caller,
        changes: StateChanges | Iterable[StateChange | Mapping[str, object]],
        *,
        correlation_id: str | UUID | None = None,
        local_time: str | None = None,
        deadline: Deadline | None = None,
    ) -> int:
        """Set states. Returns the upstream status (204, or 200 as one upstream sample shows,
        with a JSON body).

        Sent again only when it certainly did not reach AIR MILES (no connection) or AIR MILES
        said it did not process it (429, 503); not sent at all with less than
        `put_min_seconds` left (an UpstreamTimeoutError, nothing sent). An error after it may
        have been applied (no answer, a cut or unreadable one, 502, 504, a 200 that is not
        well-formed) is an OutcomeUnknownError: it is never sent again."""
        body: StateChanges = (
            changes
            if isinstance(changes, StateChanges)
            else _validated(
                lambda c: StateChanges.model_validate({"state_changes": c}), list(changes)
            )
        )
        correlation = _correlation_id(correlation_id)
        response = self._call(
            "put",
            "PUT",
            self.settings.put_path,
            caller,
            correlation,
            deadline=deadline,
            local_time=local_time,
            data=body.model_dump_json(by_alias=True),
            success=upstream.PUT_SUCCESS_STATUSES,
            repeatable=False,
        )
        if response.status_code != 204:
            # A 200 must be a well-formed answer: an empty one (a connection closed in the
            # middle of the headers reads as one) or a foreign body cannot tell whether the
            # change was applied, so it is reported as unknown, not as applied.
            if not response.content.strip():
                raise unknown_outcome(
                    UpstreamError(
                        "AIR MILES answered 200 without a body.",
                        upstream_status=response.status_code,
                        correlation_id=correlation,
                    )
                )
            try:
                _parse(response, correlation, _JSON_VALUE.validate_json)
            except UpstreamError as exc:
                raise unknown_outcome(exc) from None
        return response.status_code

    # ------------------------------------------------------------ plumbing

    def _read(
        self,
        endpoint: Literal["get", "find", "count"],
        caller: Caller,
        params: list[tuple[str, str]],
        answer: type[AnswerT],
        correlation_id: str | UUID | None,
        local_time: str | None,
        deadline: Deadline | None,
        asked: set[UUID] | None = None,
    ) -> AnswerT:
        """GET, FIND or COUNT: the answer, refused if it lists another collector's offers or
        offers not `asked` for (`_check_entries`)."""
        correlation = _correlation_id(correlation_id)
        path = {
            "get": self.settings.get_path,
            "find": self.settings.find_path,
            "count": self.settings.count_path,
        }[endpoint]
        response = self._call(
            endpoint,
            "GET",
            path,
            caller,
            correlation,
            deadline=deadline,
            local_time=local_time,
            params=params,
        )
        result = _parse(response, correlation, answer.model_validate_json)
        if isinstance(result, AirMilesGetResult | AirMilesFindResult):
            _check_entries(response, correlation, result.offers, caller, asked)
        return result

    def _call(
        self,
        endpoint: str,
        method: str,
        path: str,
        caller: Caller | None,
        correlation: str,
        *,
        deadline: Deadline | None,
        local_time: str | None = None,
        params: RequestData = None,
        data: str | None = None,
        success: frozenset[int] = frozenset({200}),
        repeatable: bool = True,
    ) -> requests.Response:
        headers = self._base_headers(correlation, local_time)
        if isinstance(caller, Collector):
            headers[upstream.COLLECTOR_HEADER] = caller.number
        response = self.auth.send(
            caller.access_token if isinstance(caller, MemberToken) else None,
            endpoint,
            method,
            self.settings.base_url + path,
            deadline=deadline or self.transport.deadline(),
            correlation_id=correlation,
            headers=headers,
            params=params,
            data=data,
            repeatable=repeatable,
        )
        if response.status_code in success:
            return response
        error = self._error(endpoint, response, correlation, caller)
        if not repeatable and outcome_unknown_status(response.status_code):
            raise unknown_outcome(error)
        raise error

    def _base_headers(self, correlation_id: str, local_time: str | None) -> dict[str, str]:
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "x-correlation-id": correlation_id,
            "x-origin-client": self.settings.origin_client,
        }
        if local_time is not None:
            if not _LOCAL_TIME.fullmatch(local_time):
                raise ValidationError(
                    "X-Local-Time must look like YYYY-MM-DDTHH:MM:SS.",
                    correlation_id=correlation_id,
                )
            headers["x-local-time"] = local_time
        return headers

    def _error(
        self, endpoint: str, response: requests.Response, correlation_id: str, caller: Caller | None
    ) -> OfferStateError:
        try:
            body = AirMilesErrorBody.model_validate_json(response.content)
        except PydanticValidationError:
            body = AirMilesErrorBody()
        return error_for_upstream_status(
            response.status_code,
            endpoint=endpoint,
            response_code=body.response_code,
            correlation_id=correlation_id,
            retry_after=self.transport.retry_after(response),
            member_token=isinstance(caller, MemberToken),
        )


def _parse(
    response: requests.Response, correlation_id: str, validate: Callable[[bytes], ParsedT]
) -> ParsedT:
    try:
        return validate(response.content)
    except PydanticValidationError as exc:
        # Covers a body that is not JSON at all ("json_invalid") as well as a wrong shape.
        not_json = any(e["type"] == "json_invalid" for e in exc.errors())
        raise UpstreamError(
            "AIR MILES answered with a body that is not JSON."
            if not_json
            else "AIR MILES answered in an unexpected shape.",
            upstream_status=response.status_code,
            correlation_id=correlation_id,
        ) from None


def _check_entries(
    response: requests.Response,
    correlation_id: str,
    entries: list[AirMilesOfferStates],
    caller: Caller,
    asked: set[UUID] | None,
) -> None:
    """Refuse an answer about another collector, or about offers that were not asked for:
    passing it on could show one collector's data to another."""
    for entry in entries:
        wrong_collector = (
            isinstance(caller, Collector)
            and entry.collector_id is not None
            and entry.collector_id != caller.number
        )
        if wrong_collector or (asked is not None and entry.offer_id not in asked):
            raise UpstreamError(
                "AIR MILES answered about other offers or another collector than asked.",
                upstream_status=response.status_code,
                correlation_id=correlation_id,
            )


def _validated(parse: Callable[[InputT], ParsedT], value: InputT) -> ParsedT:
    try:
        return parse(value)
    except PydanticValidationError as exc:
        raise ValidationError(details=validation_details(exc)) from None


def _correlation_id(value: str | UUID | None) -> str:
    if value is None:
        return str(uuid.uuid4())
    try:
        return str(UUID(str(value)))
    except ValueError:
        raise ValidationError("A correlation id is a UUID.") from None
