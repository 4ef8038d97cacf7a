"""The support staff's audit reader (`make audit`), against a stack found by its outputs: what
it finds, and that it needs no more than the stack's AuditReaderPolicy (never the secret)."""

from __future__ import annotations

import json
import re
import socket
import uuid
from datetime import timedelta
from decimal import Decimal

import boto3
import pytest

from local import audit_reader
from offer_state.pseudonyms import KmsPseudonyms, pepper_pseudonym
from tests.support.functions import MEMBER, SAVE, Function, event, offer_event
from tests.support.iam import AUDIT_READER, Evaluator, assert_evaluated
from tests.support.inprocess import FAKE_AWS, Deployed, fresh_boto3_session
from tests.support.pending import begin_change, writer_at
from tests.support.permissions import as_arns, policy_permissions, recorded_aws_calls
from tests.support.sandbox_control import SandboxControl


def _stack(name: str, outputs: dict[str, str]) -> str:
    """A CloudFormation stack (in moto) with these outputs; its name."""
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))
    return name


@pytest.fixture
def cloudformation_stack(deployed: Deployed) -> str:
    """A CloudFormation stack (in moto) whose outputs name the audit table and the key."""
    return _stack(
        "uat",
        {
            audit_reader.TABLE_OUTPUT: deployed.refs["AuditTable"],
            audit_reader.KEY_OUTPUT: deployed.pseudonym_key_arn,
            "SecretArn": deployed.refs["AirMilesSecret"],  # there, and never read
        },
    )


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
    table = deployed.refs["AuditTable"]
    pseudonyms = KmsPseudonyms(boto3.client("kms"), deployed.refs["PseudonymKey"])
    writer = writer_at(boto3.client("dynamodb"), table, timedelta(days=1), pseudonyms)
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


def test_the_reader_needs_only_its_policy_and_never_reads_the_secret(
    cloudformation_stack,
    deployed: Deployed,
    update_state: Function,
    sandbox_control: SandboxControl,
    capsys,
    iam: Evaluator,
):
    offer = sandbox_control.untouched_offers(1)[0]
    correlation = str(uuid.uuid4())
    update_state.call(offer_event(offer, SAVE, headers={"x-correlation-id": correlation}))
    capsys.readouterr()

    fresh_boto3_session()  # the reader's clients are made, and recorded, from here
    with recorded_aws_calls() as calls:
        assert _run(capsys, "--collector", MEMBER, "--stack", cloudformation_stack)[0] == 0
        assert _run(capsys, "--correlation", correlation, "--stack", cloudformation_stack)[0] == 0

    actions = {action for action, _ in calls}
    assert not any(a.startswith("secretsmanager:") for a in actions)
    used = {
        (action, "the stack" if action == "cloudformation:DescribeStacks" else resource)
        for action, resource in as_arns(calls, deployed.template, deployed.refs)
    }
    stack_id = deployed.template.resolve({"Ref": "AWS::StackId"})
    policy = {
        (action, "the stack" if resource == stack_id else resource)
        for action, resource in policy_permissions(deployed.template, "AuditReaderPolicy")
    }
    assert used == policy
    # Evaluated (iam-simulate): allowed to its holder, denied to every function's role.
    assert_evaluated(calls, deployed.template, iam, AUDIT_READER)


def test_records_keyed_by_a_retired_key_are_found_with_the_current_ones(
    deployed: Deployed, get_state: Function, monkeypatch, capsys
):
    get_state.call(event("GET", "/v1/offers/states/count"))  # under the stack's own key
    old_key = deployed.pseudonym_key_arn
    new_key = deployed.new_pseudonym_key()
    rotated = deployed.with_parameters(PseudonymKeyArn=new_key, RetiredPseudonymKeyArns=old_key)
    rotated.start("GetStateFunction", monkeypatch).call(event("GET", "/v1/offers/states/find"))
    capsys.readouterr()

    outputs = {
        audit_reader.TABLE_OUTPUT: deployed.refs["AuditTable"],
        audit_reader.KEY_OUTPUT: new_key,
    }
    only_new = _stack("only-new", outputs)
    both = _stack("both", {**outputs, audit_reader.RETIRED_KEYS_OUTPUT: old_key})

    _, out, _ = _run(capsys, "--collector", MEMBER, "--stack", only_new, "--json")
    assert [json.loads(line)["action"] for line in out.splitlines()] == ["FIND_STATES"]
    _, out, _ = _run(capsys, "--collector", MEMBER, "--stack", both, "--json")
    found = [json.loads(line) for line in out.splitlines()]
    assert [r["action"] for r in found] == ["FIND_STATES", "COUNT_STATES"]  # newest first
    # Each record names the key of its pk (moto names a key by its id, AWS by its ARN).
    assert new_key.endswith(found[0]["pseudonymKey"])
    assert old_key.endswith(found[1]["pseudonymKey"])
    assert found[0]["pk"] != found[1]["pk"]


def test_records_from_before_kms_are_found_only_with_the_old_pepper(
    cloudformation_stack, deployed: Deployed, get_state: Function, tmp_path, capsys
):
    get_state.call(event("GET", "/v1/offers/states/count"))
    pepper = deployed.secret()["audit_pepper"]  # what the secret held before the upgrade
    _write_as_before_kms(deployed, pepper.encode())
    pepper_file = tmp_path / "pepper"
    pepper_file.write_text(pepper + "\n")
    capsys.readouterr()

    _, out, _ = _run(capsys, "--collector", MEMBER, "--stack", cloudformation_stack, "--json")
    assert [json.loads(line)["action"] for line in out.splitlines()] == ["COUNT_STATES"]
    _, out, _ = _run(
        capsys,
        *("--collector", MEMBER, "--stack", cloudformation_stack, "--json"),
        *("--legacy-pepper-file", str(pepper_file)),
    )
    found = [json.loads(line) for line in out.splitlines()]
    assert [r["action"] for r in found] == ["COUNT_STATES", "UPDATE_STATES"]  # newest first
    assert found[1]["pk"] == pepper_pseudonym(MEMBER, pepper.encode()).value
    assert "pseudonymKey" not in found[1]


def test_a_key_the_reader_cannot_use_is_a_one_line_error(deployed: Deployed, capsys):
    missing = deployed.pseudonym_key_arn[:-12] + "000000000000"  # no such key: KMS refuses
    outputs = {
        audit_reader.TABLE_OUTPUT: deployed.refs["AuditTable"],
        audit_reader.KEY_OUTPUT: missing,
    }
    code, out, err = _run(capsys, "--collector", MEMBER, "--stack", _stack("gone", outputs))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: cannot use the pseudonym key {missing}: ")
    assert err.count("\n") == 1


def _write_as_before_kms(deployed: Deployed, pepper: bytes) -> None:
    """An UPDATE_STATES record as the gateway wrote it before KMS (an older one): keyed with
    the pepper, without `pseudonymKey`."""
    created = "2026-01-05T10:15:30.123Z"
    deployed.table("AuditTable").put_item(
        Item={
            "pk": pepper_pseudonym(MEMBER, pepper).value,
            "sk": f"{created}#request-0",
            "createdAt": created,
            "action": "UPDATE_STATES",
            "outcome": "SUCCEEDED",
            "httpStatus": 200,
            "collector": "*******0110",
            "correlationId": str(uuid.uuid4()),
        }
    )


# Records as the reader returns them (DynamoDB's numbers are Decimals), for how they are shown.
SHOWN = [
    {
        "createdAt": "2026-01-05T10:15:30.123Z",
        "action": "UPDATE_STATES",
        "offerIds": ["0123456789abcdef", "fedcba98", "x"],
        "requestedStates": [
            {"states": [{"name": "SAVE", "value": "SAVED"}, {"name": "OPT_IN", "value": "IN"}]},
            {"name": "SAVE", "value": "SAVED"},
        ],
        "outcome": "REJECTED",
        "errorCode": "VALIDATION_ERROR",
        "httpStatus": Decimal(400),
        "upstreamStatus": Decimal(204),
        "correlationId": "c-1",
        "latencyMs": Decimal("12.6"),
    },
    {"outcome": "PENDING", "offerIds": ["abc"], "httpStatus": Decimal(200)},
    {},
]


def test_a_table_row_shows_each_field_short_and_a_dash_or_a_mark_where_one_is_missing(
    monkeypatch, capsys
):
    monkeypatch.setattr(audit_reader, "records", lambda args: SHOWN)

    code, out, _ = _run(capsys, "--collector", MEMBER)

    assert code == 0
    cells = [re.split(r"\s{2,}", line) for line in out.splitlines()[2:5]]
    assert cells == [
        [
            "2026-01-05T10:15:30.123Z",
            "UPDATE_STATES",
            "01234567… +2",
            "SAVE:SAVED, OPT_IN:IN",
            "REJECTED VALIDATION_ERROR",
            "400 (AIR MILES 204)",
            "c-1",
            "13 ms",
        ],
        ["?", "?", "abc…", "-", "PENDING", "200", "?", "-"],
        ["?", "?", "-", "-", "?", "…", "?", "-"],
    ]
    assert out.splitlines()[5:] == [
        "3 record(s) for collector *******0110, newest first",
        audit_reader.OUTCOME_NOTES["PENDING"],
    ]


def test_a_correlation_id_is_named_in_the_summary_in_lower_case(monkeypatch, capsys):
    monkeypatch.setattr(audit_reader, "records", lambda args: [])
    correlation = "6F9619FF-8B86-D011-B42D-00CF4FC964FF"

    code, out, _ = _run(capsys, "--correlation", correlation)

    assert code == 0
    assert (
        out.splitlines()[-1]
        == f"0 record(s) for correlation id {correlation.lower()}, newest first"
    )


def test_json_lines_give_decimals_as_plain_numbers(monkeypatch, capsys):
    item = {
        "b": Decimal("2.50"),
        "a": Decimal("2"),
        "c": [Decimal("1.0"), {"d": Decimal("0.1")}],
        "e": "x",
        "f": True,
        "g": None,
    }
    monkeypatch.setattr(audit_reader, "records", lambda args: [item, {}])

    code, out, _ = _run(capsys, "--collector", MEMBER, "--json")

    assert code == 0
    assert out.splitlines() == [
        '{"a": 2, "b": 2.5, "c": [1, {"d": 0.1}], "e": "x", "f": true, "g": null}',
        "{}",
    ]


def test_a_legacy_pepper_needs_a_collector(capsys, tmp_path):
    code, out, err = _run(
        capsys, "--correlation", str(uuid.uuid4()), "--legacy-pepper-file", str(tmp_path)
    )
    assert (code, out) == (2, "")
    assert err == "error: a legacy pepper finds a collector's records: give a collector\n"


def test_a_legacy_pepper_that_cannot_be_read_is_a_one_line_error(
    cloudformation_stack, tmp_path, capsys
):
    missing = tmp_path / "missing"
    code, out, err = _run(
        capsys,
        *("--collector", MEMBER, "--stack", cloudformation_stack),
        *("--legacy-pepper-file", str(missing)),
    )
    assert (code, out) == (2, "")
    assert err == "error: cannot read the legacy pepper: No such file or directory\n"


def test_a_stack_without_the_outputs_is_a_one_line_error(aws, capsys):
    code, out, err = _run(capsys, "--collector", MEMBER, "--stack", _stack("bare", {}))
    assert (code, out) == (2, "")
    assert err == "error: stack bare has no AuditTableName and ActivePseudonymKeyArn outputs\n"


def test_without_a_stack_and_no_local_stack_running_it_says_how_to_start_one(monkeypatch, capsys):
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MOTO_PORT", str(port))

    code, out, err = _run(capsys, "--collector", MEMBER)

    assert (code, out) == (2, "")
    assert err == (
        f"error: no local stack answers at http://127.0.0.1:{port}: start it with `make run`,"
        " or give STACK=\n"
    )
