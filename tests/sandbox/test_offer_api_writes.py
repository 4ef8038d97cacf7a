"""The Offer State API's PUT."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from local.sandbox.seed import CATALOGUE, FRESH_OFFERS
from tests.sandbox.helpers import (
    FRESH,
    MAIN,
    NOBODY,
    PUT,
    PUT_ALIAS,
    UNKNOWN_OFFER,
    UPDATED_AT,
    call,
    ids,
    m2m_headers,
    m2m_token,
    offer,
    parse_time,
    put_body,
)


def test_put_writes_states_stamped_now_with_microseconds(sandbox_server, http):
    headers = m2m_headers(sandbox_server, http)
    fresh = FRESH_OFFERS[3].offer_id
    body = {
        "stateChanges": [
            {
                "offerId": fresh.upper(),
                "states": [
                    {"name": "SAVE", "value": "SAVED"},
                    {"name": "OPT_IN", "value": "OPTED_IN"},
                ],
            }
        ]
    }
    before = time.time()

    answer = call(http, sandbox_server, "put", headers, body=body)

    assert answer.status_code == 204
    assert answer.content == b""
    (entry,) = call(http, sandbox_server, "get", headers, {"offerId": fresh}).json()["offers"]
    assert entry["offerId"] == fresh
    assert [(s["name"], s["value"]) for s in entry["states"]] == [
        ("OPT_IN", "OPTED_IN"),
        ("SAVE", "SAVED"),
    ]
    for state in entry["states"]:
        assert UPDATED_AT.fullmatch(state["updatedAt"])
        assert before - 1 <= parse_time(state["updatedAt"]).timestamp() <= time.time() + 1
    assert ids(call(http, sandbox_server, "find", headers))[0] == fresh  # newest first


def test_put_alias_path_writes_and_counts_as_put(sandbox_server, http, sandbox_control):
    fresh = FRESH_OFFERS[7].offer_id

    answer = http.put(
        sandbox_server.url + PUT_ALIAS,
        headers=m2m_headers(sandbox_server, http),
        json=put_body(fresh),
    )

    assert answer.status_code == 204
    assert fresh in sandbox_control.states(MAIN)
    assert sandbox_control.calls()["put"] == 1


def test_put_of_an_unchanged_value_still_refreshes_updated_at(sandbox_server, http):
    headers = m2m_headers(sandbox_server, http)

    assert call(http, sandbox_server, "put", headers, body=put_body(offer(41))).status_code == 204

    (entry,) = call(http, sandbox_server, "get", headers, {"offerId": offer(41)}).json()["offers"]
    (state,) = entry["states"]
    assert state["value"] == "SAVED"
    assert state["updatedAt"] != "2026-01-07T12:30:45.654321Z"
    assert abs(parse_time(state["updatedAt"]).timestamp() - time.time()) < 5


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"[]",
        b'"stateChanges"',
        json.dumps({}).encode(),
        json.dumps({"stateChanges": {}}).encode(),
        json.dumps({"stateChanges": []}).encode(),
        json.dumps(put_body(*[FRESH] * 101)).encode(),
        json.dumps({"stateChanges": [{"states": [{"name": "SAVE", "value": "SAVED"}]}]}).encode(),
        json.dumps(put_body("not-a-uuid")).encode(),
        json.dumps({"stateChanges": [{"offerId": FRESH}]}).encode(),
        json.dumps({"stateChanges": [{"offerId": FRESH, "states": []}]}).encode(),
        json.dumps({"stateChanges": [{"offerId": FRESH, "states": ["SAVE:SAVED"]}]}).encode(),
        json.dumps(put_body(FRESH, name="LIKE", value="SAVED")).encode(),
        json.dumps(put_body(FRESH, name="SAVE", value="OPTED_IN")).encode(),
        json.dumps(put_body(FRESH, name="OPT_IN", value="OPTED_OUT")).encode(),
        json.dumps(put_body(FRESH, name="SAVE", value="saved")).encode(),
        json.dumps({"stateChanges": [{"offerId": FRESH, "states": [{"name": "SAVE"}]}]}).encode(),
        json.dumps({"stateChanges": ["x"]}).encode(),
    ],
)
def test_put_refuses_malformed_bodies(sandbox_server, http, sandbox_control, body):
    answer = call(http, sandbox_server, "put", m2m_headers(sandbox_server, http), body=body)

    assert answer.status_code == 400
    assert answer.json()["responseCode"] == "BAD_REQUEST"
    assert FRESH not in sandbox_control.states(MAIN)


def test_put_of_an_unknown_offer_is_record_not_found(sandbox_server, http):
    answer = call(
        http, sandbox_server, "put", m2m_headers(sandbox_server, http), body=put_body(UNKNOWN_OFFER)
    )

    assert answer.status_code == 404
    assert answer.json()["responseCode"] == "RECORD_NOT_FOUND"


@pytest.mark.parametrize(
    ("second", "status"),
    [
        ({"offerId": UNKNOWN_OFFER, "states": [{"name": "SAVE", "value": "SAVED"}]}, 404),
        ({"offerId": FRESH_OFFERS[2].offer_id, "states": [{"name": "SAVE", "value": "X"}]}, 400),
    ],
)
def test_put_batch_with_one_bad_change_changes_nothing(
    sandbox_server, http, sandbox_control, second, status
):
    before = sandbox_control.raw_states(MAIN)
    first = {"offerId": FRESH_OFFERS[1].offer_id, "states": [{"name": "SAVE", "value": "SAVED"}]}
    unsave = {"offerId": offer(41), "states": [{"name": "SAVE", "value": "UNSAVED"}]}

    answer = call(
        http,
        sandbox_server,
        "put",
        m2m_headers(sandbox_server, http),
        body={"stateChanges": [first, unsave, second]},
    )

    assert answer.status_code == status
    assert sandbox_control.raw_states(MAIN) == before


def test_put_accepts_a_batch_of_100_changes(sandbox_server, http):
    headers = m2m_headers(sandbox_server, http, NOBODY)
    batch = [o.offer_id for o in CATALOGUE] + [o.offer_id for o in CATALOGUE[:20]]

    answer = call(http, sandbox_server, "put", headers, body=put_body(*batch))

    assert answer.status_code == 204
    assert call(http, sandbox_server, "count", headers).json() == {"count": 80}


def test_concurrent_puts_lose_no_update(sandbox_server, http, sandbox_control):
    token = m2m_token(sandbox_server, http)
    collector = "70000000008"
    groups = [[o.offer_id for o in CATALOGUE[n * 10 : n * 10 + 10]] for n in range(8)]
    statuses: list[int] = []
    barrier = threading.Barrier(len(groups))

    def writer(offer_ids: list[str]) -> None:
        headers = {"Authorization": f"Bearer {token}", "Collector-Number": collector}
        with requests.Session() as session:
            barrier.wait(timeout=5)
            for offer_id in offer_ids:
                answer = session.put(
                    sandbox_server.url + PUT, headers=headers, json=put_body(offer_id), timeout=5
                )
                statuses.append(answer.status_code)

    threads = [threading.Thread(target=writer, args=(group,)) for group in groups]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()  # every answer in: each call's own timeout bounds the wait

    assert statuses == [204] * 80
    stored = [entry["offerId"] for entry in sandbox_control.raw_states(collector)["offers"]]
    assert stored == [o.offer_id for o in CATALOGUE]
    assert sandbox_control.calls()["put"] == 80


def test_put_can_answer_200_with_an_empty_object(sandbox_server, http):
    http.post(sandbox_server.url + "/_sandbox/config", json={"putStatus": 200}).raise_for_status()

    answer = call(http, sandbox_server, "put", m2m_headers(sandbox_server, http))

    assert answer.status_code == 200
    assert answer.json() == {}
