"""The Offer State endpoints: health, FIND, GET, COUNT and PUT.

`dispatch` has already counted the call, applied any fault and verified the bearer token
(`request.claims`, None when it is missing or invalid); these functions do the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime

from local.sandbox.messages import ApiError, Reply, Request, json_reply
from local.sandbox.state import SandboxState
from local.sandbox.tokens import COLLECTOR_CLAIM
from local.sandbox.validation import (
    bad_request,
    is_collector_number,
    parse_filters,
    parse_find,
    parse_offer_ids,
    parse_state_changes,
)


def _authenticate(request: Request) -> dict:
    if request.claims is None:
        raise ApiError(401, "The access token is missing, invalid or expired.")
    return request.claims


def collector_of(request: Request) -> str:
    """The collector a call is about: the member's own claim, or the M2M header."""
    claims = _authenticate(request)
    headers = request.headers.get_all("Collector-Number") or []
    if COLLECTOR_CLAIM in claims:
        if headers:
            raise bad_request("The Collector-Number header must not be sent with a member token.")
        if not is_collector_number(claims[COLLECTOR_CLAIM]):
            raise ApiError(401, "The member token carries no valid collector number.")
        return claims[COLLECTOR_CLAIM]
    if not headers:
        raise bad_request("The Collector-Number header is required with a machine token.")
    if len(headers) > 1 or not is_collector_number(headers[0].strip()):
        raise bad_request("The Collector-Number header must be exactly 11 digits.")
    return headers[0].strip()


def health(state: SandboxState, request: Request) -> Reply:
    _authenticate(request)
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json_reply(200, [{"healthy": True, "timestamp": now}])


def get_states(state: SandboxState, request: Request) -> Reply:
    """Of the offers asked for, those the collector has a state for, in the order asked."""
    collector = collector_of(request)
    offer_ids = parse_offer_ids(request.query)
    entries = {entry.offer.offer_id: entry for entry in state.store.entries(collector)}
    offers = [entries[offer_id].to_json() for offer_id in offer_ids if offer_id in entries]
    return json_reply(200, {"offers": offers})


def find_states(state: SandboxState, request: Request) -> Reply:
    """One page of the collector's matching offers, plus the paging totals unless disabled."""
    collector = collector_of(request)
    query = parse_find(request.query)
    matching = [e for e in state.store.entries(collector) if query.filters.matches(e)]
    page = query.page(query.order(matching))
    body: dict = {"offers": [entry.to_json() for entry in page]}
    if state.config["findTotals"]:
        body.update(
            pageNumber=query.page_number, pageSize=query.page_size, totalCount=len(matching)
        )
    return json_reply(200, body)


def count_states(state: SandboxState, request: Request) -> Reply:
    """FIND's filters, counted; sort and paging parameters are ignored."""
    collector = collector_of(request)
    filters = parse_filters(request.query)
    return json_reply(
        200, {"count": sum(filters.matches(e) for e in state.store.entries(collector))}
    )


def put_states(state: SandboxState, request: Request, *, apply: bool = True) -> Reply:
    """Validates the whole batch, then applies it atomically; 204 (or 200 `{}` if configured).
    `apply=False` (a fault that loses the change) answers the same and stores nothing."""
    collector = collector_of(request)
    try:
        payload = request.json()
    except ValueError:
        raise bad_request("The body is not valid JSON.") from None
    changes = parse_state_changes(payload)
    if not all(state.store.knows(offer_id) for offer_id, _ in changes):
        raise ApiError(404, "An offer in the request does not exist.")
    if apply:
        state.store.apply(collector, changes)
    if state.config["putStatus"] == 200:
        return json_reply(200, {})
    return Reply(204)
