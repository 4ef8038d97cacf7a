"""The control API under /_sandbox/: catalogue, raw states, member tokens, config, reset,
counts, the request log, fault registration."""

from __future__ import annotations

import uuid

import jwt
import pytest
import requests

from local.sandbox import CLIENT_SECRET, COLLECTOR_CLAIM, MEMBER_AUDIENCE, TOKEN_PATH
from local.sandbox.seed import CATALOGUE, FRESH_OFFERS, PARTNER_IDS, SEED_STATES
from tests.sandbox.helpers import (
    FIND,
    HEALTH,
    MAIN,
    NOBODY,
    SECOND,
    UNSAVED,
    call,
    m2m_headers,
    m2m_token,
    offer,
    put_body,
    token_form,
    verify_with_jwks,
)


def test_control_lists_the_catalogue_in_order(sandbox_server, http):
    offer_ids = http.get(sandbox_server.url + "/_sandbox/offers", timeout=5).json()["offerIds"]

    assert offer_ids == [o.offer_id for o in CATALOGUE]
    assert 50 <= len(offer_ids) <= 100
    assert len(set(offer_ids)) == len(offer_ids)
    assert all(str(uuid.UUID(offer_id)) == offer_id for offer_id in offer_ids)


def test_seed_is_the_same_in_every_sandbox():
    # uuid5 ids: a second process (or a restart) sees the same catalogue and partners.
    assert CATALOGUE[0].offer_id == str(
        uuid.uuid5(uuid.UUID("6f1d2c3b-8a4e-5f60-9b7c-0d1e2f3a4b5c"), "offer:000")
    )
    assert len(set(PARTNER_IDS)) == 4
    assert {o.partner_id for o in CATALOGUE} == set(PARTNER_IDS)
    seeded = {offer_id for states in SEED_STATES.values() for offer_id in states}
    assert not seeded & {o.offer_id for o in FRESH_OFFERS}


def test_control_shows_raw_collector_states_including_unsaved_only(sandbox_control):
    body = sandbox_control.raw_states(UNSAVED)

    assert body == {
        "collectorNumber": UNSAVED,
        "offers": [
            {
                "offerId": offer(60),
                "collectorId": UNSAVED,
                "states": [
                    {
                        "name": "OPT_IN",
                        "value": "OPTED_IN",
                        "updatedAt": "2026-03-10T14:20:00.424242Z",
                    }
                ],
            },
            {
                "offerId": offer(61),
                "collectorId": UNSAVED,
                "states": [
                    {"name": "SAVE", "value": "UNSAVED", "updatedAt": "2026-03-11T14:20:00.434343Z"}
                ],
            },
        ],
    }
    assert [e["offerId"] for e in sandbox_control.raw_states(SECOND)["offers"]] == [
        offer(50),
        offer(51),
        offer(52),
    ]
    assert sandbox_control.raw_states(NOBODY)["offers"] == []


@pytest.mark.parametrize("number", ["123", "8000000011x", "800000001100"])
def test_control_collector_states_refuses_bad_numbers(sandbox_server, http, number):
    answer = http.get(f"{sandbox_server.url}/_sandbox/collectors/{number}/states", timeout=5)

    assert answer.status_code == 400
    assert answer.json()["error"]


def test_control_mints_member_tokens(sandbox_server, http, sandbox_control):
    token = sandbox_control.member_token(MAIN)

    claims = verify_with_jwks(http, sandbox_server, token, MEMBER_AUDIENCE)
    assert claims[COLLECTOR_CLAIM] == MAIN
    assert claims["sub"] == "auth0|member-0110"
    assert claims["iss"] == sandbox_server.issuer
    assert claims["exp"] - claims["iat"] == 86400


@pytest.mark.parametrize(
    "body", [{}, {"collectorNumber": 80000000110}, {"collectorNumber": "8000000011"}, []]
)
def test_control_member_token_refuses_bad_numbers(sandbox_server, http, body):
    answer = http.post(sandbox_server.url + "/_sandbox/member-token", json=body, timeout=5)

    assert answer.status_code == 400


def test_control_config_changes_token_lifetime_and_answers_whole_config(
    sandbox_server, http, sandbox_control
):
    answer = http.post(sandbox_server.url + "/_sandbox/config", json={"tokenTtl": 5}, timeout=5)

    assert answer.json() == {"tokenTtl": 5, "putStatus": 204, "findTotals": True}
    assert http.get(sandbox_server.url + "/_sandbox/config").json()["tokenTtl"] == 5
    issued = http.post(sandbox_server.url + TOKEN_PATH, data=token_form()).json()
    assert issued["expires_in"] == 5
    m2m = jwt.decode(issued["access_token"], options={"verify_signature": False})
    member = jwt.decode(sandbox_control.member_token(MAIN), options={"verify_signature": False})
    assert m2m["exp"] - m2m["iat"] == 5
    assert member["exp"] - member["iat"] == 5


def test_token_ttl_zero_issues_tokens_that_are_already_expired(sandbox_server, http):
    http.post(sandbox_server.url + "/_sandbox/config", json={"tokenTtl": 0}).raise_for_status()

    answer = call(http, sandbox_server, "find", m2m_headers(sandbox_server, http))

    assert answer.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"tokenTTL": 5},
        {"tokenTtl": -1},
        {"tokenTtl": "5"},
        {"tokenTtl": True},
        {"putStatus": 201},
        {"findTotals": "false"},
        [],
    ],
)
def test_control_config_refuses_unknown_keys_and_bad_values(sandbox_server, http, body):
    answer = http.post(sandbox_server.url + "/_sandbox/config", json=body, timeout=5)

    assert answer.status_code == 400
    assert http.get(sandbox_server.url + "/_sandbox/config").json() == {
        "tokenTtl": 86400,
        "putStatus": 204,
        "findTotals": True,
    }


def test_reset_restores_seed_and_defaults_and_keeps_the_signing_key(
    sandbox_server, http, sandbox_control
):
    headers = m2m_headers(sandbox_server, http)
    seeded = sandbox_control.raw_states(MAIN)
    call(http, sandbox_server, "put", headers, body=put_body(offer(40), offer(1), value="UNSAVED"))
    http.post(sandbox_server.url + "/_sandbox/config", json={"tokenTtl": 5, "putStatus": 200})
    sandbox_control.fault(endpoint="count", mode="status", status=500)
    assert sandbox_control.raw_states(MAIN) != seeded

    answer = http.post(sandbox_server.url + "/_sandbox/reset", timeout=5)

    assert answer.json() == {"status": "reset"}
    assert sandbox_control.raw_states(MAIN) == seeded
    assert http.get(sandbox_server.url + "/_sandbox/config").json()["tokenTtl"] == 86400
    assert http.get(sandbox_server.url + "/_sandbox/faults").json() == {"faults": []}
    assert sandbox_control.calls() == dict.fromkeys(
        ["token", "health", "find", "get", "count", "put"], 0
    )
    assert http.get(sandbox_server.url + "/_sandbox/requests").json() == {"requests": []}
    # A token issued before the reset still verifies: the key survived.
    assert call(http, sandbox_server, "count", headers).json() == {"count": 4}


def test_revoking_refuses_every_token_issued_before_and_none_issued_after(
    sandbox_server, http, sandbox_control
):
    machine = m2m_headers(sandbox_server, http)
    member = {"Authorization": f"Bearer {sandbox_control.member_token(MAIN)}"}
    old_kid = jwt.get_unverified_header(machine["Authorization"].split()[1])["kid"]
    assert call(http, sandbox_server, "count", machine).status_code == 200

    answer = http.post(sandbox_server.url + "/_sandbox/tokens/revoke", timeout=5)

    assert answer.json() == {"status": "revoked"}
    # Every token issued before, machine or member, answers 401 from now on ...
    for headers in (machine, member):
        refused = call(http, sandbox_server, "count", headers)
        assert refused.status_code == 401
    assert call(http, sandbox_server, "count", machine).status_code == 401  # and stays refused
    # ... as after a signing-key rotation: a token issued now verifies against the new key.
    fresh = m2m_headers(sandbox_server, http)
    assert call(http, sandbox_server, "count", fresh).json() == {"count": 4}
    token = fresh["Authorization"].split()[1]
    claims = verify_with_jwks(http, sandbox_server, token, "https://offer-state.sandbox")
    assert claims["azp"] == "sandbox-client"
    assert jwt.get_unverified_header(token)["kid"] != old_kid
    # A reset keeps the new key: revoked tokens stay refused.
    sandbox_control.reset()
    assert call(http, sandbox_server, "count", machine).status_code == 401
    assert call(http, sandbox_server, "count", fresh).status_code == 200


def test_calls_count_every_call_rejected_and_faulted_ones_too(
    sandbox_server, http, sandbox_control
):
    headers = m2m_headers(sandbox_server, http)  # token: 1
    call(http, sandbox_server, "health", headers)
    call(http, sandbox_server, "health", {})  # rejected: 401
    call(http, sandbox_server, "find", headers)
    call(http, sandbox_server, "get", headers, {"offerId": "bad"})  # rejected: 400
    sandbox_control.fault(endpoint="count", mode="status", status=503)
    call(http, sandbox_server, "count", headers)  # faulted
    call(http, sandbox_server, "put", headers)
    http.post(sandbox_server.url + TOKEN_PATH, data=token_form(client_secret="nope"))  # rejected

    assert sandbox_control.calls() == {
        "token": 2,
        "health": 2,
        "find": 1,
        "get": 1,
        "count": 1,
        "put": 1,
    }


def test_request_log_records_calls_without_secrets(sandbox_server, http, sandbox_control):
    token = m2m_token(sandbox_server, http)
    member = sandbox_control.member_token(SECOND)
    call(
        http,
        sandbox_server,
        "find",
        {"Authorization": f"Bearer {token}", "Collector-Number": MAIN, "x-origin-client": "t:p:w"},
        {"state": ["SAVE:SAVED", "OPT_IN:OPTED_IN"], "pageSize": "5"},
    )
    call(http, sandbox_server, "count", {"Authorization": f"Bearer {member}"})
    call(http, sandbox_server, "health", {"Authorization": "Bearer junk"})
    call(
        http, sandbox_server, "put", {"Authorization": f"Bearer {token}", "Collector-Number": MAIN}
    )

    answer = http.get(sandbox_server.url + "/_sandbox/requests", timeout=5)

    log = answer.json()["requests"]
    assert [(r["endpoint"], r["status"], r["tokenKind"]) for r in log] == [
        ("token", 200, "none"),
        ("find", 200, "m2m"),
        ("count", 200, "member"),
        ("health", 401, "none"),
        ("put", 204, "m2m"),
    ]
    find = log[1]
    assert find["method"] == "GET"
    assert find["path"] == FIND
    assert find["query"] == {"state": ["SAVE:SAVED", "OPT_IN:OPTED_IN"], "pageSize": ["5"]}
    assert find["headers"]["collector-number"] == MAIN
    assert find["headers"]["x-origin-client"] == "t:p:w"
    assert find["headers"]["authorization"] == "Bearer <redacted>"
    assert log[4]["body"] == put_body(FRESH_OFFERS[0].offer_id)
    assert token not in answer.text
    assert member not in answer.text
    assert "junk" not in answer.text
    assert CLIENT_SECRET not in answer.text


def test_request_log_keeps_the_last_500_calls(sandbox_server, http, sandbox_control):
    with requests.Session() as session:
        for n in range(503):
            session.get(sandbox_server.url + HEALTH, params={"n": str(n)}, timeout=5)

    log = http.get(sandbox_server.url + "/_sandbox/requests", timeout=5).json()["requests"]

    assert len(log) == 500
    assert log[0]["query"] == {"n": ["3"]}
    assert log[-1]["query"] == {"n": ["502"]}
    assert sandbox_control.calls()["health"] == 503


def test_faults_are_registered_listed_and_cleared(sandbox_server, http, sandbox_control):
    stored = sandbox_control.fault(endpoint="find", mode="status", status=503, count=2)
    sandbox_control.fault(endpoint="*", mode="delay", delayMs=0)

    listed = http.get(sandbox_server.url + "/_sandbox/faults", timeout=5).json()["faults"]
    cleared = http.delete(sandbox_server.url + "/_sandbox/faults", timeout=5)

    assert stored["endpoint"] == "find"
    assert stored["mode"] == "status"
    assert stored["status"] == 503
    assert stored["count"] == 2
    assert stored["retryAfter"] == 1
    assert [(f["endpoint"], f["mode"]) for f in listed] == [("find", "status"), ("*", "delay")]
    assert cleared.json() == {"status": "cleared"}
    assert http.get(sandbox_server.url + "/_sandbox/faults", timeout=5).json() == {"faults": []}


def test_faults_list_their_pace_and_whether_a_put_is_applied(sandbox_control):
    sandbox_control.fault(endpoint="get", mode="drip")
    sandbox_control.fault(endpoint="*", mode="drip", intervalMs=2.5)
    sandbox_control.fault(endpoint="put", mode="truncate")
    sandbox_control.fault(endpoint="put", mode="timeout", applied=True)
    sandbox_control.fault(endpoint="put", mode="badGzip")
    sandbox_control.fault(endpoint="count", mode="delay", delayMs=10)

    listed = sandbox_control.faults()

    assert [(f.get("intervalMs"), f.get("applied")) for f in listed] == [
        (200, None),
        (2.5, None),
        (None, False),
        (None, True),
        (None, None),  # badGzip answers the PUT as a correct one would: it is stored
        (None, None),
    ]


@pytest.mark.parametrize(
    "fault",
    [
        {"endpoint": "search", "mode": "status", "status": 503},
        {"endpoint": "find", "mode": "explode"},
        {"mode": "timeout"},
        {"endpoint": "find", "mode": "status"},
        {"endpoint": "find", "mode": "status", "status": "503"},
        {"endpoint": "find", "mode": "status", "status": 99},
        {"endpoint": "find", "mode": "status", "status": 600},
        {"endpoint": "find", "mode": "delay"},
        {"endpoint": "find", "mode": "delay", "delayMs": -1},
        {"endpoint": "find", "mode": "timeout", "count": 0},
        {"endpoint": "find", "mode": "timeout", "count": 1.5},
        {"endpoint": "find", "mode": "timeout", "colour": "red"},
        {"endpoint": "find", "mode": "badgzip"},
        {"endpoint": "find", "mode": "drip", "intervalMs": 0},
        {"endpoint": "find", "mode": "drip", "intervalMs": -5},
        {"endpoint": "find", "mode": "drip", "intervalMs": True},
        {"endpoint": "find", "mode": "drip", "intervalMs": "200"},
        {"endpoint": "find", "mode": "truncate", "intervalMs": 200},
        {"endpoint": "put", "mode": "reset", "applied": "yes"},
        {"endpoint": "put", "mode": "reset", "applied": 1},
        {"endpoint": "get", "mode": "truncate", "applied": True},
        {"endpoint": "*", "mode": "truncate", "applied": True},
        {"endpoint": "put", "mode": "status", "status": 503, "applied": True},
        {"endpoint": "put", "mode": "malformed", "applied": False},
        {"endpoint": "put", "mode": "badGzip", "applied": True},
        [],
    ],
)
def test_fault_registration_refuses_bad_specs(sandbox_server, http, fault):
    answer = http.post(sandbox_server.url + "/_sandbox/faults", json=fault, timeout=5)

    assert answer.status_code == 400
    assert answer.json()["error"]
    assert http.get(sandbox_server.url + "/_sandbox/faults", timeout=5).json() == {"faults": []}
