"""The request models refuse what AIR MILES would refuse; the answer models tolerate what
the upstream page leaves open."""

from __future__ import annotations

import json
import uuid

import pytest
from pydantic import ValidationError

from offer_state.models import airmiles_answers, airmiles_requests
from offer_state.models.airmiles_requests import CountQuery, FindQuery, StateChanges, StateFilter

A = "951d9a70-4cf8-41b1-a01e-7953f069f527"
B = "00000000-0000-4000-8000-000000000001"


def test_offer_ids_fold_duplicates_keep_order_and_lower_case():
    ids = airmiles_requests.parse_offer_ids([f"{B},{A.upper()}", A, B])
    assert [str(i) for i in ids] == [B, A]


@pytest.mark.parametrize(
    "value", [[], "", "not-a-uuid", [A, "x"], f"{A},,{B}", [str(uuid.uuid4()) for _ in range(101)]]
)
def test_offer_ids_refuse_bad_input(value):
    with pytest.raises(ValidationError):
        airmiles_requests.parse_offer_ids(value)


def test_a_hundred_ids_with_duplicates_beyond_are_fine():
    ids = [str(uuid.uuid4()) for _ in range(100)]
    assert len(airmiles_requests.parse_offer_ids(ids + ids[:5])) == 100


@pytest.mark.parametrize(
    ("name", "value"), [("SAVE", "SAVED"), ("SAVE", "UNSAVED"), ("OPT_IN", "OPTED_IN")]
)
def test_an_allowed_state_pair_is_a_filter_written_name_colon_value(name, value):
    assert str(StateFilter(name=name, value=value)) == f"{name}:{value}"


@pytest.mark.parametrize(
    "text", ["OPT_IN:SAVED", "SAVE:OPTED_IN", "OPT_IN:OPTED_OUT", "SAVE", "save:saved", ":"]
)
def test_a_state_filter_outside_the_allowed_pairs_is_refused(text):
    with pytest.raises(ValueError, match=r"state|Input should be"):  # pydantic raises ValueErrors
        StateFilter.parse(text)


def test_state_changes_refuse_bad_pairs_unknown_fields_duplicates_and_size():
    ok = {"offerId": A, "states": [{"name": "SAVE", "value": "SAVED"}]}
    assert StateChanges.model_validate({"stateChanges": [ok]}).state_changes[
        0
    ].offer_id == uuid.UUID(A)
    bad = [
        {"stateChanges": []},
        {"stateChanges": [ok, ok]},
        {"stateChanges": [{**ok, "extra": 1}]},
        {"stateChanges": [{"offerId": A, "states": []}]},
        {"stateChanges": [{"offerId": A, "states": [{"name": "OPT_IN", "value": "UNSAVED"}]}]},
        {
            "stateChanges": [
                {
                    "offerId": A,
                    "states": [
                        {"name": "SAVE", "value": "SAVED"},
                        {"name": "SAVE", "value": "UNSAVED"},
                    ],
                }
            ]
        },
        {
            "stateChanges": [
                {"offerId": str(uuid.uuid4()), "states": ok["states"]} for _ in range(26)
            ]
        },
        {"stateChanges": [ok], "more": True},
    ]
    for body in bad:
        with pytest.raises(ValidationError):
            StateChanges.model_validate(body)


def test_state_changes_serialise_in_upstream_form():
    body = StateChanges.model_validate(
        {
            "stateChanges": [
                {"offerId": A.upper(), "states": [{"name": "OPT_IN", "value": "OPTED_IN"}]}
            ]
        }
    )
    assert body.model_dump(by_alias=True, mode="json") == {
        "stateChanges": [{"offerId": A, "states": [{"name": "OPT_IN", "value": "OPTED_IN"}]}]
    }


def test_a_find_query_becomes_upstream_params_in_order_from_page_zero():
    query = FindQuery.model_validate(
        {
            "state": ["SAVE:SAVED", "OPT_IN:OPTED_IN"],
            "partnerId": B,
            "region": "ON",
            "firstSortBy": "updatedAt",
            "firstSortByDescending": "true",
            "pageSize": "5",
        }
    )
    assert query.to_params() == [
        ("state", "SAVE:SAVED"),
        ("state", "OPT_IN:OPTED_IN"),
        ("partnerId", B),
        ("region", "ON"),
        ("firstSortBy", "updatedAt"),
        ("firstSortByDescending", "true"),
        ("pageNumber", "0"),
        ("pageSize", "5"),
    ]


@pytest.mark.parametrize(
    "query",
    [
        {"pageSize": 0},
        {"pageSize": 101},
        {"pageNumber": -1},
        {"region": "XX"},
        {"partnerId": "p"},
        {"firstSortBy": "name"},
        {"state": "SAVE:MAYBE"},
        {"unknown": 1},
    ],
)
def test_a_find_query_refuses_bad_paging_values_and_unknown_fields(query):
    with pytest.raises(ValidationError):
        FindQuery.model_validate(query)


def test_count_query_has_no_paging():
    with pytest.raises(ValidationError):
        CountQuery.model_validate({"pageSize": 5})


def test_answers_tolerate_missing_totals_and_unknown_fields():
    answer = {
        "offers": [
            {
                "offerId": A,
                "states": [
                    {
                        "name": "SAVE",
                        "value": "SAVED",
                        "properties": {},
                        "updatedAt": "2021-07-07T20:55:26.276917Z",
                    }
                ],
                "x": 1,
            }
        ],
        "y": 2,
    }
    result = airmiles_answers.AirMilesFindResult.model_validate_json(json.dumps(answer))
    assert result.total_count is None
    assert result.offers[0].states[0].updated_at == "2021-07-07T20:55:26.276917Z"


def test_airmiles_health_result_is_a_list():
    assert (
        airmiles_answers.airmiles_health_result()
        .validate_json('[{"healthy": true, "timestamp": "2022-08-18T19:00:53.151Z"}]')[0]
        .healthy
    )
