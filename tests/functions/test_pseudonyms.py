"""Collectors' pseudonyms come from KMS (`GenerateMac` on the stack's HMAC key), never from
the AIR MILES secret: one KMS call per collector per environment, the key named in every
audit record, and a rotation that keeps replays (docs/audit.md, "Pseudonyms")."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from tests.support.functions import (
    M2M,
    MEMBER,
    OTHER,
    READ,
    SAVE,
    Function,
    event,
    machine,
    offer_event,
)
from tests.support.inprocess import Deployed
from tests.support.sandbox_control import SandboxControl


def _pseudonym(key_arn: str, number: str) -> str:
    mac = boto3.client("kms").generate_mac(
        KeyId=key_arn, Message=number.encode(), MacAlgorithm="HMAC_SHA_256"
    )["Mac"]
    return "COLLECTOR#" + mac.hex()


def test_an_audit_key_is_the_collectors_mac_under_the_stacks_key_and_names_it(
    get_state: Function, deployed: Deployed
):
    get_state.call(event("GET", "/v1/offers/states/count"))
    [item] = deployed.audit_items()
    assert item["pk"] == _pseudonym(deployed.pseudonym_key_arn, MEMBER)
    assert deployed.pseudonym_key_arn.endswith(item["pseudonymKey"])  # moto: the key id


def test_one_kms_call_per_collector_and_the_same_pseudonym_each_time(
    aws_calls, get_state: Function, deployed: Deployed
):
    for _ in range(3):
        assert get_state.call(event("GET", "/v1/offers/states/count"))[0] == 200
    assert (
        get_state.call(event("GET", "/v1/offers/states/count", **machine(OTHER, READ, M2M)))[0]
        == 200
    )
    macs = [params["Message"] for action, params in aws_calls if action == "kms:GenerateMac"]
    assert sorted(macs) == sorted([MEMBER.encode(), OTHER.encode()])
    keys = [item["pk"] for item in deployed.audit_items()]
    assert len(keys) == 4
    assert len(set(keys)) == 2


def test_the_secret_needs_no_pepper_and_a_refused_request_reads_no_secret(
    aws_calls, get_state: Function, deployed: Deployed
):
    secret = deployed.secret()
    del secret["audit_pepper"]
    deployed.put_secret(json.dumps(secret))
    aws_calls.clear()  # the function's calls from here
    assert get_state.call(event("GET", "/v1/offers/states", query=[("offerId", "bad")]))[0] == 400
    assert not [action for action, _ in aws_calls if action.startswith("secretsmanager:")]
    assert get_state.call(event("GET", "/v1/offers/states/count"))[0] == 200
    assert sorted(i["outcome"] for i in deployed.audit_items()) == ["REJECTED", "SUCCEEDED"]


def test_a_request_first_made_before_a_key_rotation_is_replayed_after_it(
    update_state: Function,
    deployed: Deployed,
    sandbox_control: SandboxControl,
    monkeypatch: pytest.MonkeyPatch,
):
    first_offer, second_offer = sandbox_control.untouched_offers(2)
    before = {"idempotency-key": str(uuid.uuid4())}
    applied = update_state.call(offer_event(first_offer, SAVE, headers=before))
    assert applied[0] == 200

    old_key = deployed.pseudonym_key_arn
    rotated = deployed.with_parameters(
        PseudonymKeyArn=deployed.new_pseudonym_key(), RetiredPseudonymKeyArns=old_key
    )
    after_rotation = rotated.start("UpdateStateFunction", monkeypatch)
    status, headers, body = after_rotation.call(offer_event(first_offer, SAVE, headers=before))
    assert (status, headers.get("Idempotent-Replayed"), body) == (200, "true", applied[2])

    after = {"idempotency-key": str(uuid.uuid4())}
    assert after_rotation.call(offer_event(second_offer, SAVE, headers=after))[0] == 200
    _, headers, _ = after_rotation.call(offer_event(second_offer, SAVE, headers=after))
    assert headers.get("Idempotent-Replayed") == "true"
    assert sandbox_control.calls()["put"] == 2  # each change reached AIR MILES once


def test_without_the_retired_key_listed_a_repeat_across_a_rotation_is_sent_again(
    update_state: Function,
    deployed: Deployed,
    sandbox_control: SandboxControl,
    monkeypatch: pytest.MonkeyPatch,
):
    """Why RetiredPseudonymKeyArns must list the old key (the control of the test above)."""
    offer = sandbox_control.untouched_offers(1)[0]
    key = {"idempotency-key": str(uuid.uuid4())}
    assert update_state.call(offer_event(offer, SAVE, headers=key))[0] == 200
    rotated = deployed.with_parameters(PseudonymKeyArn=deployed.new_pseudonym_key())
    after_rotation = rotated.start("UpdateStateFunction", monkeypatch)
    _, headers, _ = after_rotation.call(offer_event(offer, SAVE, headers=key))
    assert "Idempotent-Replayed" not in headers
    assert sandbox_control.calls()["put"] == 2
