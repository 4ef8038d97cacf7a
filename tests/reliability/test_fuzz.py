"""Property-based: whatever arrives in the query string, the headers, the path or the body of
any route, the answer is never a 5xx and an error always has the documented shape."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.functions import M2M, READ, WRITE, Function, event, offer_event

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same examples on every run: deterministic tests
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
QUERY_NAMES = st.sampled_from(
    [
        "offerId",
        "state",
        "partnerId",
        "region",
        "firstSortBy",
        "firstSortByDescending",
        "secondSortBy",
        "secondSortByDescending",
        "pageNumber",
        "pageSize",
        "collectorNumber",
    ]
) | TEXT.filter(bool)
QUERY_VALUES = (
    TEXT
    | st.uuids().map(str)
    | st.sampled_from(
        ["SAVE:SAVED", "OPT_IN:OPTED_IN", "SAVE:UNSAVED", "ON", "true", "0", "-1", "100", "101"]
    )
    | st.integers(-(10**12), 10**12).map(str)
)
HEADERS = st.dictionaries(
    st.sampled_from(
        ["collector-number", "x-local-time", "x-correlation-id", "idempotency-key", "content-type"]
    ),
    TEXT | st.sampled_from(["80000000110", "2026-11-25T16:59:00", "application/json"]),
    max_size=4,
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
STATE = st.fixed_dictionaries(
    {
        "name": TEXT | st.sampled_from(["SAVE", "OPT_IN"]),
        "value": TEXT | st.sampled_from(["SAVED", "UNSAVED", "OPTED_IN"]),
    }
)
NEAR_VALID_BODY = st.fixed_dictionaries(
    {
        "stateChanges": st.lists(
            st.fixed_dictionaries(
                {"offerId": st.uuids().map(str) | TEXT, "states": st.lists(STATE, max_size=3)}
            ),
            max_size=3,
        )
    }
) | st.fixed_dictionaries({"states": st.lists(STATE, max_size=3)})
TOKEN_KINDS = st.sampled_from(["member", "m2m", "no-collector"])


def _token(kind: str) -> dict[str, Any]:
    if kind == "member":
        return {}
    if kind == "m2m":
        return {"collector": None, "scopes": (READ, WRITE, M2M)}
    return {"collector": None, "scopes": (READ, WRITE)}


def _assert_well_formed(answer: tuple[int, dict[str, str], Any]) -> None:
    status, headers, body = answer
    assert status < 500, body
    assert "X-Correlation-Id" in headers
    if status >= 400:
        assert set(body) == {"error", "correlationId"}, body
        assert set(body["error"]) <= {"code", "message", "details"}
        assert isinstance(body["error"]["message"], str)
        assert body["error"]["message"]
        assert body["correlationId"] == headers["X-Correlation-Id"]


@FUZZ
@given(
    path=st.sampled_from(
        ["/v1/offers/states", "/v1/offers/states/find", "/v1/offers/states/count"]
    ),
    query=st.lists(st.tuples(QUERY_NAMES, QUERY_VALUES), max_size=6),
    headers=HEADERS,
    token=TOKEN_KINDS,
)
def test_reads_never_fail_with_5xx(get_state: Function, path, query, headers, token):
    headers.pop("content-type", None)
    _assert_well_formed(
        get_state.call(event("GET", path, query=query, headers=headers, **_token(token)))
    )


@FUZZ
@given(body=JSON | NEAR_VALID_BODY, headers=HEADERS, token=TOKEN_KINDS)
def test_batch_writes_never_fail_with_5xx(update_state: Function, body, headers, token):
    headers.setdefault("content-type", "application/json")
    request = event(
        "PUT", "/v1/offers/states", body=json.dumps(body), headers=headers, **_token(token)
    )
    _assert_well_formed(update_state.call(request))


@FUZZ
@given(
    # API Gateway routes any non-empty path segment here, whatever its characters.
    offer_id=TEXT.filter(lambda t: t and "/" not in t) | st.uuids().map(str),
    body=JSON | NEAR_VALID_BODY,
    headers=HEADERS,
)
def test_single_writes_never_fail_with_5xx(update_state: Function, offer_id, body, headers):
    headers.setdefault("content-type", "application/json")
    _assert_well_formed(update_state.call(offer_event(offer_id, body, headers=headers)))


@FUZZ
@given(
    raw=st.binary(max_size=300),
    content_type=st.sampled_from(
        ["application/json", "application/json; charset=utf-8", "text/plain"]
    ),
)
def test_arbitrary_bytes_as_a_body_never_fail_with_5xx(update_state: Function, raw, content_type):
    request = event("PUT", "/v1/offers/states", headers={"content-type": content_type})
    request["body"] = raw.decode("latin-1")
    _assert_well_formed(update_state.call(request))
