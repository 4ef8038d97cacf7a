"""The support staff's audit reader (`make audit`), against a stack found by its outputs."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import boto3
import pytest

from local import audit_reader
from tests.support.functions import MEMBER, SAVE, Function, event, offer_event
from tests.support.inprocess import Deployed
from tests.support.pending import begin_change, writer_at
from tests.support.sandbox_control import SandboxControl


@pytest.fixture
def cloudformation_stack(deployed: Deployed) -> str:
    """A CloudFormation stack (in moto) whose outputs name the tables and the secret."""
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "AuditTableName": {"Value": deployed.refs["AuditTable"]},
            "SecretArn": {"Value": deployed.refs["AirMilesSecret"]},
        },
    }
    boto3.client("cloudformation").create_stack(StackName="uat", TemplateBody=json.dumps(template))
    return "uat"


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = audit_reader.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_collector_records_newest_first_as_a_table(
    cloudformation_stack,
    get_state: Function,
    update_state: Function,
    sandbox_control: SandboxControl,
    capsys,
):
    offer = sandbox_control.untouched_offers(1)[0]
    get_state.call(event("GET", "/v1/offers/states/count"))
    _, headers, _ = update_state.call(offer_event(offer, SAVE))
    get_state.call(event("GET", "/v1/offers/states", query=[("offerId", "bad")]))
    capsys.readouterr()

    code, out, _ = _run(capsys, "--collector", MEMBER, "--stack", cloudformation_stack)

    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["time", "action", "offers", "states"]
    actions = [line.split()[1] for line in lines[2:-1]]
    assert actions == ["GET_STATES", "UPDATE_STATES", "COUNT_STATES"]  # newest first
    assert "REJECTED VALIDATION_ERROR" in lines[2]
    assert "SAVE:SAVED" in lines[3]
    assert "200 (AIR MILES 204)" in lines[3]
    assert headers["X-Correlation-Id"] in lines[3]
    assert lines[-1] == "3 record(s) for collector *******0110, newest first"  # no note
    assert MEMBER not in out


def test_a_change_whose_outcome_was_never_recorded_shows_as_unknown_and_says_so(
    cloudformation_stack, deployed: Deployed, reconcile_pending: Function, capsys
):
    # A PUT's PENDING item from long ago, which its invocation never finished.
    pepper = deployed.secret()["audit_pepper"].encode()
    table = deployed.refs["AuditTable"]
    writer = writer_at(boto3.client("dynamodb"), table, timedelta(days=1), pepper)
    _, correlation = begin_change(writer)
    reconcile_pending.invoke({"detail-type": "Scheduled Event"})
    capsys.readouterr()

    code, out, _ = _run(capsys, "--collector", MEMBER, "--stack", cloudformation_stack)

    assert code == 0
    lines = out.splitlines()
    assert "UNKNOWN OUTCOME_NOT_RECORDED" in lines[2]
    assert correlation in lines[2]
    assert lines[3] == "1 record(s) for collector *******0110, newest first"
    assert lines[4] == audit_reader.OUTCOME_NOTES["UNKNOWN"]
    assert "whether it was applied is not known" in lines[4]


def test_a_correlation_id_in_any_case_finds_its_record_as_json(
    cloudformation_stack, update_state: Function, sandbox_control: SandboxControl, capsys
):
    offer = sandbox_control.untouched_offers(1)[0]
    correlation = str(uuid.uuid4())
    update_state.call(offer_event(offer, SAVE, headers={"x-correlation-id": correlation}))
    capsys.readouterr()

    code, out, _ = _run(
        capsys, "--correlation", correlation.upper(), "--stack", cloudformation_stack, "--json"
    )

    assert code == 0
    [record] = [json.loads(line) for line in out.splitlines()]
    assert record["correlationId"] == correlation
    assert record["outcome"] == "SUCCEEDED"
    assert record["httpStatus"] == 200


def test_every_page_of_records_is_read_newest_first(
    cloudformation_stack, get_state: Function, capsys
):
    for _ in range(7):
        get_state.call(event("GET", "/v1/offers/states/count"))
    capsys.readouterr()
    code, out, _ = _run(
        capsys, "--collector", MEMBER, "--stack", cloudformation_stack, "--json", "--page-size", "2"
    )
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 7
    assert [r["sk"] for r in records] == sorted((r["sk"] for r in records), reverse=True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--collector", "8000000011"], "a collector number is 11 digits"),
        (["--collector", "8000000011x"], "a collector number is 11 digits"),
        (["--correlation", "not-a-uuid"], "a correlation id is a UUID"),
        (["--collector", MEMBER, "--stack", "missing"], "cannot read stack missing"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(aws, capsys, args, message):
    code, out, err = _run(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.startswith(f"error: {message}")
    assert err.count("\n") == 1
