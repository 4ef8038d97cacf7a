"""The Offer State API's reads: GET, FIND and COUNT."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from local.sandbox.seed import CATALOGUE, FRESH_OFFERS, PARTNER_IDS, SEED_STATES
from tests.sandbox.helpers import (
    GET,
    MAIN,
    NOBODY,
    UNKNOWN_OFFER,
    UNSAVED,
    UPDATED_AT,
    call,
    ids,
    m2m_headers,
    offer,
    put_body,
)

# -- GET -----------------------------------------------------------------------------------


def test_get_returns_only_offers_with_state_in_the_order_asked(sandbox_server, http):
    asked = [offer(43), offer(0), offer(40), UNKNOWN_OFFER, offer(41)]

    answer = call(
        http, sandbox_server, "get", m2m_headers(sandbox_server, http), {"offerId": asked}
    )

    assert answer.status_code == 200
    assert answer.json() == {
        "offers": [
            {
                "offerId": offer(43),
                "collectorId": MAIN,
                "states": [
                    {
                        "name": "OPT_IN",
                        "value": "OPTED_IN",
                        "updatedAt": "2026-01-09T17:05:12.999999Z",
                    }
                ],
            },
            {
                "offerId": offer(40),
                "collectorId": MAIN,
                "states": [
                    {
                        "name": "OPT_IN",
                        "value": "OPTED_IN",
                        "updatedAt": "2026-01-05T10:15:30.123456Z",
                    },
                    {"name": "SAVE", "value": "SAVED", "updatedAt": "2026-01-06T08:00:00.000001Z"},
                ],
            },
            {
                "offerId": offer(41),
                "collectorId": MAIN,
                "states": [
                    {"name": "SAVE", "value": "SAVED", "updatedAt": "2026-01-07T12:30:45.654321Z"}
                ],
            },
        ]
    }


def test_get_takes_repeated_comma_separated_any_case_ids_and_folds_duplicates(sandbox_server, http):
    query = f"offerId={offer(42).upper()},{offer(40)}&offerId={offer(42)}&offerId={offer(41)}"

    answer = http.get(
        f"{sandbox_server.url}{GET}?{query}", headers=m2m_headers(sandbox_server, http), timeout=5
    )

    assert answer.status_code == 200
    assert ids(answer) == [offer(42), offer(40), offer(41)]


def test_get_accepts_100_ids_and_refuses_101(sandbox_server, http):
    headers = m2m_headers(sandbox_server, http)
    hundred = [o.offer_id for o in CATALOGUE] + [str(uuid.UUID(int=n)) for n in range(1, 21)]

    ok = call(http, sandbox_server, "get", headers, {"offerId": hundred})
    folded = call(http, sandbox_server, "get", headers, {"offerId": [*hundred, hundred[0].upper()]})
    too_many = call(
        http, sandbox_server, "get", headers, {"offerId": [*hundred, str(uuid.uuid4())]}
    )

    assert ok.status_code == 200
    assert ids(ok) == [offer(40), offer(41), offer(42), offer(43)]
    assert folded.status_code == 200
    assert too_many.status_code == 400
    assert too_many.json()["responseCode"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    "query",
    [
        "",
        "offerId=",
        "offerId=not-a-uuid",
        f"offerId={CATALOGUE[40].offer_id},,{CATALOGUE[41].offer_id}",
        f"offerId={CATALOGUE[40].offer_id.replace('-', '')}",
        f"offerId={{{CATALOGUE[40].offer_id}}}",
    ],
)
def test_get_refuses_missing_or_malformed_ids(sandbox_server, http, query):
    answer = http.get(
        f"{sandbox_server.url}{GET}?{query}", headers=m2m_headers(sandbox_server, http), timeout=5
    )

    assert answer.status_code == 400
    assert answer.json()["responseCode"] == "BAD_REQUEST"


def test_unsaved_only_offer_counts_as_having_no_state(sandbox_server, http):
    headers = m2m_headers(sandbox_server, http, UNSAVED)

    got = call(http, sandbox_server, "get", headers, {"offerId": [offer(60), offer(61)]})
    found = call(http, sandbox_server, "find", headers)
    unsaved = call(http, sandbox_server, "find", headers, {"state": "SAVE:UNSAVED"})
    counted = call(http, sandbox_server, "count", headers)

    assert ids(got) == [offer(60)]
    assert ids(found) == [offer(60)]
    assert found.json()["totalCount"] == 1
    assert ids(unsaved) == []
    assert counted.json() == {"count": 1}


def test_unsaving_an_opted_in_offer_keeps_it_with_both_states(sandbox_server, http):
    headers = m2m_headers(sandbox_server, http)
    assert call(http, sandbox_server, "put", headers, body=put_body(offer(40), value="UNSAVED")).ok

    got = call(http, sandbox_server, "get", headers, {"offerId": offer(40)})
    saved = call(http, sandbox_server, "find", headers, {"state": "SAVE:SAVED"})
    unsaved = call(http, sandbox_server, "find", headers, {"state": "SAVE:UNSAVED"})

    (entry,) = got.json()["offers"]
    assert [(s["name"], s["value"]) for s in entry["states"]] == [
        ("OPT_IN", "OPTED_IN"),
        ("SAVE", "UNSAVED"),
    ]
    assert offer(40) not in ids(saved)
    assert ids(unsaved) == [offer(40)]


def test_unsaving_an_offer_without_other_state_removes_it(sandbox_server, http):
    headers = m2m_headers(sandbox_server, http)
    assert call(http, sandbox_server, "put", headers, body=put_body(offer(41), value="UNSAVED")).ok

    assert call(http, sandbox_server, "get", headers, {"offerId": offer(41)}).json() == {
        "offers": []
    }
    assert call(http, sandbox_server, "count", headers).json() == {"count": 3}


# -- FIND ----------------------------------------------------------------------------------


def test_find_lists_saved_and_opted_in_offers_newest_first(sandbox_server, http):
    answer = call(http, sandbox_server, "find", m2m_headers(sandbox_server, http))

    assert answer.status_code == 200
    body = answer.json()
    # Newest first by each offer's latest state: 43 (9 Jan), 41 (7 Jan), 40 (6 Jan), 42 (3 Jan).
    assert ids(answer) == [offer(43), offer(41), offer(40), offer(42)]
    assert (body["pageNumber"], body["pageSize"], body["totalCount"]) == (0, 20, 4)
    for entry in body["offers"]:
        assert set(entry) == {"offerId", "collectorId", "states"}
        assert all(set(state) == {"name", "value", "updatedAt"} for state in entry["states"])
        assert all(UPDATED_AT.fullmatch(state["updatedAt"]) for state in entry["states"])


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "SAVE:SAVED"}, {40, 41, 42}),
        ({"state": "OPT_IN:OPTED_IN"}, {40, 43}),
        ({"state": ["SAVE:SAVED", "OPT_IN:OPTED_IN"]}, {40, 41, 42, 43}),
        ({"state": "OPT_IN:OPTED_IN,SAVE:SAVED"}, {40, 41, 42, 43}),
        ({"state": "SAVE:UNSAVED"}, set()),
    ],
)
def test_find_state_filters_combine_with_or(sandbox_server, http, params, expected):
    answer = call(http, sandbox_server, "find", m2m_headers(sandbox_server, http), params)

    assert answer.status_code == 200
    assert set(ids(answer)) == {offer(n) for n in expected}
    assert answer.json()["totalCount"] == len(expected)


@pytest.mark.parametrize(
    "state", ["SAVE", "SAVE:OPTED_IN", "OPT_IN:OPTED_OUT", "save:saved", "", "SAVE:SAVED,"]
)
@pytest.mark.parametrize("endpoint", ["find", "count"])
def test_find_and_count_refuse_bad_state_filters(sandbox_server, http, endpoint, state):
    answer = call(
        http, sandbox_server, endpoint, m2m_headers(sandbox_server, http), {"state": state}
    )

    assert answer.status_code == 400
    assert answer.json()["responseCode"] == "BAD_REQUEST"


def test_find_filters_on_partner(sandbox_server, http):
    partner = CATALOGUE[41].partner_id
    expected = [n for n in (40, 41, 42, 43) if CATALOGUE[n].partner_id == partner]

    answer = call(
        http,
        sandbox_server,
        "find",
        m2m_headers(sandbox_server, http),
        {"partnerId": partner.upper()},
    )

    assert expected == [41]
    assert ids(answer) == [offer(41)]


def test_find_filters_on_region(sandbox_server, http):
    headers = m2m_headers(sandbox_server, http)
    for region in ("ON", "BC", "YT"):
        expected = {offer(n) for n in (40, 41, 42, 43) if region in CATALOGUE[n].regions}

        answer = call(http, sandbox_server, "find", headers, {"region": region})

        assert set(ids(answer)) == expected
    # Offer 40 is national, so every region finds at least it.
    assert len(CATALOGUE[40].regions) == 13


@pytest.mark.parametrize(
    "params",
    [
        {"partnerId": "not-a-uuid"},
        {"partnerId": ""},
        {"partnerId": [PARTNER_IDS[0], PARTNER_IDS[1]]},
        {"region": "XX"},
        {"region": "on"},
        {"region": ""},
    ],
)
@pytest.mark.parametrize("endpoint", ["find", "count"])
def test_find_and_count_refuse_bad_partner_or_region(sandbox_server, http, endpoint, params):
    answer = call(http, sandbox_server, endpoint, m2m_headers(sandbox_server, http), params)

    assert answer.status_code == 400
    assert answer.json()["responseCode"] == "BAD_REQUEST"


SEEDED = (40, 41, 42, 43)


def _updated(n: int) -> datetime:
    return max(moment for _, moment in SEED_STATES[MAIN][offer(n)].values())


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"firstSortBy": "offerId"}, sorted(offer(n) for n in SEEDED)),
        (
            {"firstSortBy": "offerId", "firstSortByDescending": "true"},
            sorted((offer(n) for n in SEEDED), reverse=True),
        ),
        (
            {"firstSortBy": "updatedAt", "firstSortByDescending": "false"},
            [offer(n) for n in sorted(SEEDED, key=_updated)],
        ),
        (
            {"firstSortBy": "partnerId", "secondSortBy": "offerId"},
            [offer(n) for n in sorted(SEEDED, key=lambda n: (CATALOGUE[n].partner_id, offer(n)))],
        ),
        (
            {
                "firstSortBy": "partnerId",
                "firstSortByDescending": "TRUE",
                "secondSortBy": "updatedAt",
            },
            [
                offer(n)
                for n in sorted(SEEDED, key=lambda n: (CATALOGUE[n].partner_id, _updated(n)))
            ][::-1],
        ),
    ],
)
def test_find_sorts_on_two_keys(sandbox_server, http, params, expected):
    answer = call(http, sandbox_server, "find", m2m_headers(sandbox_server, http), params)

    assert answer.status_code == 200
    assert ids(answer) == expected


def test_find_second_sort_key_breaks_ties(sandbox_server, http):
    headers = m2m_headers(sandbox_server, http, NOBODY)
    batch = [o.offer_id for o in FRESH_OFFERS[:6]]
    assert call(http, sandbox_server, "put", headers, body=put_body(*batch)).status_code == 204

    answer = call(
        http,
        sandbox_server,
        "find",
        headers,
        {"firstSortBy": "updatedAt", "secondSortBy": "offerId", "secondSortByDescending": "true"},
    )

    # One batch, one timestamp: the second key decides the whole order.
    assert ids(answer) == sorted(batch, reverse=True)


@pytest.mark.parametrize(
    "params",
    [
        {"firstSortBy": "name"},
        {"secondSortBy": ""},
        {"firstSortByDescending": "yes"},
        {"secondSortByDescending": "1"},
    ],
)
def test_find_refuses_bad_sort_parameters(sandbox_server, http, params):
    answer = call(http, sandbox_server, "find", m2m_headers(sandbox_server, http), params)

    assert answer.status_code == 400
    assert answer.json()["responseCode"] == "BAD_REQUEST"


def test_find_pages_through_every_match(sandbox_server, http):
    headers = m2m_headers(sandbox_server, http, NOBODY)
    saved = [o.offer_id for o in FRESH_OFFERS[:25]]
    assert call(http, sandbox_server, "put", headers, body=put_body(*saved)).status_code == 204
    everything = call(http, sandbox_server, "find", headers, {"pageSize": 100})

    first = call(http, sandbox_server, "find", headers)
    second = call(http, sandbox_server, "find", headers, {"pageNumber": 1})
    pages = [
        call(http, sandbox_server, "find", headers, {"pageSize": 10, "pageNumber": n})
        for n in range(3)
    ]
    beyond = call(http, sandbox_server, "find", headers, {"pageSize": 10, "pageNumber": 3})

    assert sorted(ids(everything)) == sorted(saved)
    assert len(ids(first)) == 20
    assert ids(first) + ids(second) == ids(everything)
    assert second.json()["pageNumber"] == 1
    assert [ids(page) for page in pages] == [
        ids(everything)[0:10],
        ids(everything)[10:20],
        ids(everything)[20:25],
    ]
    assert all(page.json()["totalCount"] == 25 for page in pages)
    assert beyond.json() == {"offers": [], "pageNumber": 3, "pageSize": 10, "totalCount": 25}


@pytest.mark.parametrize(
    "params",
    [
        {"pageNumber": "-1"},
        {"pageNumber": "x"},
        {"pageNumber": "1.5"},
        {"pageNumber": ""},
        {"pageSize": "0"},
        {"pageSize": "101"},
        {"pageSize": "ten"},
        {"pageSize": ["10", "20"]},
    ],
)
def test_find_refuses_bad_paging(sandbox_server, http, params):
    answer = call(http, sandbox_server, "find", m2m_headers(sandbox_server, http), params)

    assert answer.status_code == 400
    assert answer.json()["responseCode"] == "BAD_REQUEST"


def test_find_ignores_unknown_parameters(sandbox_server, http):
    headers = m2m_headers(sandbox_server, http)

    plain = call(http, sandbox_server, "find", headers)
    extra = call(http, sandbox_server, "find", headers, {"colour": "blue", "limit": "x"})

    assert extra.status_code == 200
    assert extra.json() == plain.json()


def test_find_totals_can_be_switched_off(sandbox_server, http):
    http.post(
        sandbox_server.url + "/_sandbox/config", json={"findTotals": False}
    ).raise_for_status()

    answer = call(http, sandbox_server, "find", m2m_headers(sandbox_server, http))

    assert set(answer.json()) == {"offers"}
    assert len(answer.json()["offers"]) == 4


# -- COUNT ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, 4),
        ({"state": "SAVE:SAVED"}, 3),
        ({"state": "OPT_IN:OPTED_IN"}, 2),
        ({"state": ["SAVE:SAVED", "OPT_IN:OPTED_IN"]}, 4),
        ({"partnerId": CATALOGUE[41].partner_id}, 1),
        ({"region": "ON", "state": "SAVE:SAVED"}, None),
        # Sort and paging do not apply to COUNT, not even when they are malformed.
        ({"pageSize": "abc", "firstSortBy": "nonsense", "pageNumber": "-3"}, 4),
    ],
)
def test_count_applies_find_filters(sandbox_server, http, params, expected):
    headers = m2m_headers(sandbox_server, http)
    if expected is None:
        expected = len(ids(call(http, sandbox_server, "find", headers, params)))

    answer = call(http, sandbox_server, "count", headers, params)

    assert answer.status_code == 200
    assert answer.json() == {"count": expected}
