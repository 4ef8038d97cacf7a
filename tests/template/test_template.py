"""What template.yaml promises: least privilege, the layer, tracing, logs, a durable audit
table, gradual deployment, and a deploy doc that documents its parameters and outputs."""

from __future__ import annotations

import re

import pytest

from local.template import ROOT, Template
from offer_state.audit import PENDING_ATTRIBUTE, PENDING_INDEX
from offer_state.reconcile import RECONCILER_ATTRIBUTES
from tests.support.permissions import permissions

PARAMS = {"JwtIssuer": "https://issuer.example/", "JwtAudience": "offer-state-gateway"}
REFS = {
    "AuditTable": "audit",
    "IdempotencyTable": "idempotency",
    "AirMilesSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:airmiles",
    "OfferStateLayer": "layer",
    "PseudonymKey": "0b9d6a1e-5c3f-4d8e-9a2b-7f1e3c5d4a60",
    "TokenTable": "token",
    "TokenKey": "5e2c7a90-1d4b-4f3e-8c6a-2b9d0e7f1a35",
    **{f"{f}ErrorsAlarm": f"{f}-errors" for f in ("GetState", "UpdateState")},
    **{f"{f}Handled5xxRateAlarm": f"{f}-5xx" for f in ("GetState", "UpdateState")},
    "AuditWriteFailuresAlarm": "audit-failures",
}
FUNCTIONS = ("GetStateFunction", "UpdateStateFunction")  # the two behind the API
AUDIT_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/audit"
IDEMPOTENCY_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/idempotency"
SECRET_ARN = REFS["AirMilesSecret"]
KEY_ARN = f"arn:aws:kms:us-east-1:123456789012:key/{REFS['PseudonymKey']}"
TOKEN_TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/token"
TOKEN_KEY_ARN = f"arn:aws:kms:us-east-1:123456789012:key/{REFS['TokenKey']}"
REFRESHER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:offer-state-local-token-refresher"
# The AIR MILES token: both functions read its item and decrypt its token (the key's own policy
# grants that to their roles), and ask the refresher for a new one; none of them writes it.
READ_TOKEN = {
    ("dynamodb:GetItem", TOKEN_TABLE_ARN),
    ("kms:Decrypt", TOKEN_KEY_ARN),
    ("lambda:InvokeFunction", REFRESHER_ARN),
}

# What each function's code calls (tests/functions/test_least_privilege.py checks the code
# side: these are exactly the calls it makes).
EXPECTED_PERMISSIONS = {
    "GetStateFunction": {
        ("secretsmanager:GetSecretValue", SECRET_ARN),
        ("dynamodb:GetItem", AUDIT_ARN),  # a retried PutItem's item read back
        ("dynamodb:PutItem", AUDIT_ARN),
        ("kms:GenerateMac", KEY_ARN),
        *READ_TOKEN,
    },
    "UpdateStateFunction": {
        ("secretsmanager:GetSecretValue", SECRET_ARN),
        ("dynamodb:GetItem", AUDIT_ARN),
        ("kms:GenerateMac", KEY_ARN),
        ("dynamodb:PutItem", AUDIT_ARN),
        ("dynamodb:UpdateItem", AUDIT_ARN),
        ("dynamodb:GetItem", IDEMPOTENCY_ARN),
        ("dynamodb:PutItem", IDEMPOTENCY_ARN),
        ("dynamodb:UpdateItem", IDEMPOTENCY_ARN),
        ("dynamodb:DeleteItem", IDEMPOTENCY_ARN),
        *READ_TOKEN,
    },
    "TokenRefresherFunction": {
        ("secretsmanager:GetSecretValue", SECRET_ARN),
        ("dynamodb:GetItem", TOKEN_TABLE_ARN),
        ("dynamodb:UpdateItem", TOKEN_TABLE_ARN),
        ("kms:Encrypt", TOKEN_KEY_ARN),
    },
    "ReconcilePendingFunction": {
        ("dynamodb:Query", f"{AUDIT_ARN}/index/PendingIndex"),
        ("dynamodb:UpdateItem", AUDIT_ARN),
    },
}


@pytest.fixture
def template() -> Template:
    return Template(parameters=PARAMS, resource_refs=REFS)


def test_every_function_has_its_expected_permissions(template: Template):
    assert set(template.resources_of_type("AWS::Serverless::Function")) == set(EXPECTED_PERMISSIONS)


@pytest.mark.parametrize("function", EXPECTED_PERMISSIONS)
def test_each_function_may_do_exactly_what_its_code_does(template: Template, function: str):
    assert permissions(template, function) == EXPECTED_PERMISSIONS[function]


@pytest.mark.parametrize("function", EXPECTED_PERMISSIONS)
def test_no_wildcard_in_our_policies(template: Template, function: str):
    for action, resource in permissions(template, function):
        assert "*" not in action
        assert "*" not in resource


def test_a_customer_managed_secret_key_adds_only_decrypt_through_secrets_manager():
    key = "arn:aws:kms:us-east-1:123456789012:key/abc"
    template = Template(parameters={**PARAMS, "SecretKmsKeyArn": key}, resource_refs=REFS)
    for function in (*FUNCTIONS, "TokenRefresherFunction"):
        added = permissions(template, function) - EXPECTED_PERMISSIONS[function]
        assert added == {("kms:Decrypt", key)}
        statements = template.resolve(template.function_properties(function)["Policies"])[0][
            "Statement"
        ]
        [decrypt] = [s for s in statements if s["Action"] == "kms:Decrypt"]
        assert (
            decrypt["Condition"]["StringEquals"]["kms:ViaService"]
            == "secretsmanager.us-east-1.amazonaws.com"
        )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_runtime_architecture_tracing_layer_and_alias(template: Template, function: str):
    props = template.function_properties(function)
    major, minor = map(int, props["Runtime"].removeprefix("python").split("."))
    assert (major, minor) >= (3, 13)
    assert props["Architectures"] == ["arm64"]
    assert props["Tracing"] == "Active"
    assert props["Layers"] == [{"Ref": "OfferStateLayer"}]
    timeout = template.resolve(props["Timeout"])
    assert timeout < 29  # under API Gateway's integration timeout
    assert props["AutoPublishAlias"] == "live"
    budget = float(template.function_environment(function)["AIRMILES_TOTAL_BUDGET"])
    assert budget < timeout


@pytest.mark.parametrize("function", FUNCTIONS)
def test_snapstart_on_published_versions_by_default_and_off_by_parameter(function: str):
    default = Template(parameters=PARAMS, resource_refs=REFS)
    off = Template(parameters={**PARAMS, "SnapStart": "None"}, resource_refs=REFS)
    for template, apply_on in ((default, "PublishedVersions"), (off, "None")):
        snapstart = template.resolve(template.function_properties(function)["SnapStart"])
        assert snapstart == {"ApplyOn": apply_on}
    props = default.function_properties(function)
    # What SnapStart cannot be combined with (deploying would fail).
    assert "ProvisionedConcurrencyConfig" not in props
    assert "FileSystemConfigs" not in props
    assert props.get("EphemeralStorage", {"Size": 512})["Size"] <= 512


def test_canary_in_prod_and_all_at_once_in_uat():
    for environment, expected in (("prod", "Canary10Percent5Minutes"), ("uat", "AllAtOnce")):
        template = Template(parameters={**PARAMS, "Environment": environment}, resource_refs=REFS)
        for function in FUNCTIONS:
            preference = template.resolve(
                template.function_properties(function)["DeploymentPreference"]
            )
            assert preference["Type"] == expected
            short = function.removesuffix("Function")
            # Also what the function answers itself: a version answering 5xx to every
            # request raises no Lambda error, so its 5xx rate must roll the canary back too.
            rollback = template.function_properties(function)["DeploymentPreference"]["Alarms"]
            assert {f"{short}ErrorsAlarm", f"{short}Handled5xxRateAlarm"} <= {
                alarm["Ref"] for alarm in rollback
            }
            assert {"Ref": "AuditWriteFailuresAlarm"} in rollback


def test_alarms_cover_errors_throttles_upstream_5xx_and_audit_failures(template: Template):
    alarms = template.resources_of_type("AWS::CloudWatch::Alarm")
    metrics = set()
    for alarm in alarms.values():
        props = alarm["Properties"]
        if "MetricName" in props:
            metrics.add(props["MetricName"])
        for query in props.get("Metrics", []):
            if "MetricStat" in query:
                metrics.add(query["MetricStat"]["Metric"]["MetricName"])
    assert {
        "Errors",
        "Throttles",
        "Upstream5xx",
        "UpstreamCalls",
        "AuditWriteFailures",
        "Handled5xx",
        "StalePendingReconciled",
        "TokenFallbackFetches",
        "TokenStoreFailures",
        "StoredTokenOverdueSeconds",
    } <= metrics
    with_topic = Template(
        parameters={**PARAMS, "AlarmTopicArn": "arn:aws:sns:us-east-1:1:t"}, resource_refs=REFS
    )
    for name in alarms:
        assert with_topic.resolve(with_topic.resources[name]["Properties"]["AlarmActions"]) == [
            "arn:aws:sns:us-east-1:1:t"
        ]
        assert template.resolve({"A": template.resources[name]["Properties"]["AlarmActions"]}) == {}


def test_each_function_has_a_log_group_with_retention(template: Template):
    groups = template.resources_of_type("AWS::Logs::LogGroup")
    names = {template.resolve(g["Properties"]["LogGroupName"]) for g in groups.values()}
    for function in template.resources_of_type("AWS::Serverless::Function"):
        function_name = template.resolve(template.function_properties(function)["FunctionName"])
        assert f"/aws/lambda/{function_name}" in names
    for group in groups.values():
        assert template.resolve(group["Properties"]["RetentionInDays"]) == "90"


def test_audit_table_is_durable_and_expires_records(template: Template):
    table = template.resources["AuditTable"]
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert [g["IndexName"] for g in props["GlobalSecondaryIndexes"]] == [
        "CorrelationIndex",
        "PendingIndex",
    ]
    assert props["DeletionProtectionEnabled"] is True


def test_the_pending_index_is_sparse_and_sorted_by_time(template: Template):
    props = template.resources["AuditTable"]["Properties"]
    [index] = [g for g in props["GlobalSecondaryIndexes"] if g["IndexName"] == PENDING_INDEX]
    assert index["KeySchema"] == [
        {"AttributeName": PENDING_ATTRIBUTE, "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},  # starts with the creation time
    ]
    # Sparse: an attribute only PENDING items carry, never one every item has.
    assert PENDING_ATTRIBUTE not in {"pk", "sk", "outcome", "createdAt"}
    assert {"AttributeName": PENDING_ATTRIBUTE, "AttributeType": "S"} in props[
        "AttributeDefinitions"
    ]


def test_the_reconciler_runs_on_a_schedule_past_update_states_timeout(template: Template):
    props = template.function_properties("ReconcilePendingFunction")
    [schedule] = props["Events"].values()
    assert schedule == {
        "Type": "Schedule",
        "Properties": {
            "Schedule": "rate(5 minutes)",
            "Description": "Records UNKNOWN on stale PENDING audit items.",
        },
    }
    write_timeout = template.resolve(template.function_properties("UpdateStateFunction")["Timeout"])
    env = template.function_environment("ReconcilePendingFunction")
    assert int(env["WRITE_FUNCTION_TIMEOUT"]) == write_timeout == 15
    assert env["AUDIT_TABLE_NAME"] == "audit"
    assert props["Timeout"] <= 60
    assert template.resolve(props["SnapStart"]) == {"ApplyOn": "None"}
    assert "DeploymentPreference" not in props


def test_the_reconciler_may_update_only_the_key_and_the_outcome_fields(template: Template):
    statements = template.resolve(
        template.function_properties("ReconcilePendingFunction")["Policies"]
    )[0]["Statement"]
    [update] = [s for s in statements if s["Action"] == "dynamodb:UpdateItem"]
    condition = update["Condition"]
    attributes = condition["ForAllValues:StringEquals"]["dynamodb:Attributes"]
    assert sorted(attributes) == sorted(["pk", "sk", *RECONCILER_ATTRIBUTES])
    assert condition["StringEqualsIfExists"] == {"dynamodb:ReturnValues": "NONE"}


def test_stale_pending_items_raise_an_alarm(template: Template):
    alarm = template.resources["StalePendingReconciledAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        "OfferStateGateway",
        "StalePendingReconciled",
    )
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "offer-state-gateway"}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (
        1,
        "GreaterThanOrEqualToThreshold",
    )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_functions_5xx_rate_alarm_divides_its_5xx_answers_by_its_invocations(
    template: Template, function: str
):
    short = function.removesuffix("Function")
    alarm = template.resolve(template.resources[f"{short}Handled5xxRateAlarm"]["Properties"])
    function_name = template.resolve(template.function_properties(function)["FunctionName"])
    queries = {query["Id"]: query for query in alarm["Metrics"]}
    answered = queries["answered"]["MetricStat"]["Metric"]
    invocations = queries["invocations"]["MetricStat"]["Metric"]
    # Exactly the dimensions PartnerApi emits it with (tests/functions/test_server_error_metrics.py)
    assert answered == {
        "Namespace": "OfferStateGateway",
        "MetricName": "Handled5xx",
        "Dimensions": [
            {"Name": "service", "Value": "offer-state-gateway"},
            {"Name": "function", "Value": function_name},
        ],
    }
    assert invocations == {
        "Namespace": "AWS/Lambda",
        "MetricName": "Invocations",
        "Dimensions": [{"Name": "FunctionName", "Value": function_name}],
    }
    assert queries["rate"]["Expression"] == "IF(invocations > 0, 100 * answered / invocations, 0)"
    assert alarm["Threshold"] == "5"  # the parameter's default
    # Under the canary's share, or a canary answering 5xx to everything would pass it.
    assert int(template.body["Parameters"]["Handled5xxRatePercent"]["Default"]) < 10


def _statement(template: Template, function: str, sid: str) -> dict:
    statements = template.resolve(template.function_properties(function)["Policies"])[0][
        "Statement"
    ]
    [statement] = [s for s in statements if s.get("Sid") == sid]
    return statement


def test_update_state_may_update_only_an_audit_records_outcome(template: Template):
    finish = _statement(template, "UpdateStateFunction", "FinishAuditRecords")
    assert (finish["Action"], finish["Resource"]) == ("dynamodb:UpdateItem", AUDIT_ARN)
    assert set(finish["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]) == {
        "pk",
        "sk",  # the key must be listed, and cannot be updated anyway
        "outcome",
        "httpStatus",
        "upstreamStatus",
        "latencyMs",
        "errorCode",
        "statesAfter",
        "pending",  # the sparse index's attribute a finished record loses
        "idempotencyRecord",  # a success whose idempotency record could not be saved
    }
    assert finish["Condition"]["StringEqualsIfExists"] == {"dynamodb:ReturnValues": "NONE"}
    # Nothing else on the audit table but PutItem, which never overwrites (its condition).
    audit = {a for a, r in permissions(template, "UpdateStateFunction") if r == AUDIT_ARN}
    # (GetItem: a retried PutItem that failed its own condition reads its item back.)
    assert audit == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
    put = _statement(template, "GetStateFunction", "WriteAuditRecords")
    assert put["Action"] == ["dynamodb:GetItem", "dynamodb:PutItem"]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_functions_make_macs_with_the_pseudonym_key_only(template: Template, function: str):
    generate = _statement(template, function, "PseudonymiseCollectors")
    assert generate["Action"] == "kms:GenerateMac"
    assert generate["Condition"] == {"StringEquals": {"kms:MacAlgorithm": "HMAC_SHA_256"}}
    assert template.function_environment(function)["PSEUDONYM_KEY_ID"] == KEY_ARN


def test_the_pseudonym_key_is_an_hmac_key_kept_like_the_audit_table(template: Template):
    key = template.resources["PseudonymKey"]
    assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("Retain", "Retain")
    props = template.resolve(key["Properties"])
    assert (props["KeySpec"], props["KeyUsage"]) == ("HMAC_256", "GENERATE_VERIFY_MAC")
    [statement] = props["KeyPolicy"]["Statement"]  # the account, through IAM: nobody else
    assert statement["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}


def test_a_rotation_names_the_new_key_and_keeps_the_old_one_for_repeats():
    new, old = (f"arn:aws:kms:us-east-1:123456789012:key/{k}" for k in ("new-key", "old-key"))
    template = Template(
        parameters={**PARAMS, "PseudonymKeyArn": new, "RetiredPseudonymKeyArns": old},
        resource_refs=REFS,
    )
    assert not template.condition("CreatePseudonymKey")  # the stack's own key is not made
    for function in FUNCTIONS:
        assert template.function_environment(function)["PSEUDONYM_KEY_ID"] == new
    keys = {r for a, r in permissions(template, "UpdateStateFunction") if a == "kms:GenerateMac"}
    assert keys == {new, old}
    assert template.function_environment("UpdateStateFunction")["RETIRED_PSEUDONYM_KEY_IDS"] == old
    assert {r for a, r in permissions(template, "GetStateFunction") if a == "kms:GenerateMac"} == {
        new
    }


def test_support_staff_policy_reads_the_trail_and_makes_macs_but_never_reads_the_secret(
    template: Template,
):
    from tests.support.permissions import policy_permissions

    granted = policy_permissions(template, "AuditReaderPolicy")
    assert {action for action, _ in granted} == {
        "cloudformation:DescribeStacks",
        "dynamodb:Query",
        "kms:GenerateMac",
    }
    assert ("dynamodb:Query", f"{AUDIT_ARN}/index/CorrelationIndex") in granted
    assert ("kms:GenerateMac", KEY_ARN) in granted


def test_the_token_is_one_encrypted_item_that_only_the_refresher_writes(template: Template):
    from offer_state.token_store import ITEM_KEY

    table = template.resolve(template.resources["TokenTable"]["Properties"])
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["SSESpecification"] == {"SSEEnabled": True}
    key = template.resolve(template.resources["TokenKey"]["Properties"])
    assert (key["KeySpec"], key["KeyUsage"], key["EnableKeyRotation"]) == (
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
        True,
    )
    # Its one item, whatever else the table might hold.
    one_item = {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [ITEM_KEY]}}
    for function in FUNCTIONS:
        read = _statement(template, function, "ReadTheAirMilesToken")
        assert (read["Action"], read["Condition"]) == ("dynamodb:GetItem", one_item)
        environment = template.function_environment(function)
        assert environment["TOKEN_TABLE_NAME"] == "token"
        assert environment["TOKEN_KEY_ID"] == TOKEN_KEY_ARN
        assert environment["TOKEN_REFRESHER_FUNCTION"] == REFRESHER_ARN.rsplit(":", 1)[1]
    write = _statement(template, "TokenRefresherFunction", "WriteTheAirMilesToken")
    assert write["Condition"] == one_item
    refresher = template.function_properties("TokenRefresherFunction")
    assert template.resolve(refresher["FunctionName"]) == REFRESHER_ARN.rsplit(":", 1)[1]
    # Runs that overlap are excluded by the claim, not by reserved concurrency; an ask is not
    # retried nor kept long; a run's claim lasts its Timeout at most.
    resolved = template.resolve(refresher)
    assert "ReservedConcurrentExecutions" not in resolved
    assert resolved["EventInvokeConfig"] == {
        "MaximumEventAgeInSeconds": 60,
        "MaximumRetryAttempts": 0,
    }
    assert resolved["Events"]["EveryFiveMinutes"]["Properties"]["Schedule"] == "rate(5 minutes)"
    assert resolved["Timeout"] == 30


def test_only_the_refresher_encrypts_and_the_two_functions_decrypt_only_that_item(
    template: Template,
):
    from tests.support.permissions import key_policy_permissions

    policy = template.resolve(template.resources["TokenKey"]["Properties"]["KeyPolicy"])
    administer, encrypt, decrypt = policy["Statement"]
    role = "arn:aws:iam::123456789012:role/offer-state-local-{}Role".format
    assert encrypt["Principal"]["AWS"] == role("TokenRefresherFunction")
    assert set(decrypt["Principal"]["AWS"]) == {role(f) for f in FUNCTIONS}
    assert (encrypt["Action"], decrypt["Action"]) == ("kms:Encrypt", "kms:Decrypt")
    for use in (encrypt, decrypt):
        assert use["Condition"] == {
            "StringEquals": {
                "kms:EncryptionContext:tokenTable": "token",
                "kms:EncryptionContext:item": "airmiles-token",
            }
        }
    # The account administers the key, and through IAM it can do nothing else with it: no
    # encrypting, decrypting or granting (KMS would otherwise let any IAM policy in the
    # account decrypt, a support role's or an administrator's).
    assert administer["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    matched = [
        action
        for action in ("kms:Decrypt", "kms:Encrypt", "kms:ReEncryptFrom", "kms:CreateGrant")
        for allowed in administer["Action"]
        if re.fullmatch(allowed.replace("*", ".*"), action)
    ]
    assert matched == []
    root = "arn:aws:iam::123456789012:root"
    on_the_token_key = {p for p in key_policy_permissions(template, root) if p[1] == TOKEN_KEY_ARN}
    assert on_the_token_key == {(action, TOKEN_KEY_ARN) for action in administer["Action"]}


def test_token_alarms_fallbacks_store_failures_refresher_errors_and_an_overdue_token(
    template: Template,
):
    def alarm(name: str) -> dict:
        return template.resolve(template.resources[name]["Properties"])

    service = [{"Name": "service", "Value": "offer-state-gateway"}]
    fallbacks = alarm("TokenFallbackFetchesAlarm")
    assert (fallbacks["MetricName"], fallbacks["Dimensions"]) == ("TokenFallbackFetches", service)
    # Any fallback fetch in 15 minutes.
    assert (fallbacks["Statistic"], fallbacks["Period"], fallbacks["EvaluationPeriods"]) == (
        "Sum",
        900,
        1,
    )
    assert (fallbacks["Threshold"], fallbacks["ComparisonOperator"]) == (
        1,
        "GreaterThanOrEqualToThreshold",
    )
    failures = alarm("TokenStoreFailuresAlarm")
    assert (failures["MetricName"], failures["Dimensions"]) == ("TokenStoreFailures", service)
    errors = alarm("TokenRefresherErrorsAlarm")
    assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
    assert errors["Dimensions"] == [
        {"Name": "FunctionName", "Value": "offer-state-local-token-refresher"}
    ]
    # Every run of 15 minutes found the token past its refresh time, or none ran at all.
    overdue = alarm("StoredTokenOverdueAlarm")
    assert (overdue["MetricName"], overdue["Dimensions"]) == ("StoredTokenOverdueSeconds", service)
    assert (overdue["Statistic"], overdue["Period"], overdue["Threshold"]) == ("Minimum", 900, 0)
    assert overdue["ComparisonOperator"] == "GreaterThanThreshold"
    assert overdue["TreatMissingData"] == "breaching"
    for name in (
        "TokenFallbackFetchesAlarm",
        "TokenStoreFailuresAlarm",
        "TokenRefresherErrorsAlarm",
    ):
        assert alarm(name)["TreatMissingData"] == "notBreaching"


def test_make_audit_and_the_reconciler_get_nothing_of_the_token(template: Template):
    from tests.support.permissions import policy_permissions

    token_resources = {TOKEN_TABLE_ARN, TOKEN_KEY_ARN}
    reader = policy_permissions(template, "AuditReaderPolicy")
    reconciler = permissions(template, "ReconcilePendingFunction")
    assert not {resource for _, resource in reader | reconciler} & token_resources
    assert "TOKEN_TABLE_NAME" not in template.function_environment("ReconcilePendingFunction")


def test_the_outputs_make_audit_reads_are_the_templates(template: Template):
    from local import audit_reader

    outputs = template.body["Outputs"]
    wanted = (audit_reader.TABLE_OUTPUT, audit_reader.KEY_OUTPUT, audit_reader.RETIRED_KEYS_OUTPUT)
    assert set(wanted) <= set(outputs)
    # SAM CLI resolves an output's name as a Ref: none may share a parameter's name.
    assert not set(outputs) & set(template.body["Parameters"])


@pytest.mark.parametrize("function", FUNCTIONS)
def test_debug_switches_and_trace_capture_are_pinned_off(template: Template, function: str):
    env = template.function_environment(function)
    assert env["POWERTOOLS_DEV"] == "false"
    assert env["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"
    assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"


def test_no_machine_client_is_allowed_unless_listed(template: Template):
    listed = Template(parameters={**PARAMS, "MachineClientIds": "app-a,app-b"}, resource_refs=REFS)
    for function in FUNCTIONS:
        assert template.function_environment(function)["MACHINE_CLIENT_IDS"] == ""
        assert listed.function_environment(function)["MACHINE_CLIENT_IDS"] == "app-a,app-b"


def test_stage_is_throttled_and_access_logged(template: Template):
    api = template.resources["OfferStateApi"]["Properties"]
    assert template.resolve(api["DefaultRouteSettings"]) == {
        "ThrottlingBurstLimit": "200",
        "ThrottlingRateLimit": "100",
    }
    # /health is anonymous: a tight limit of its own, below the stage's.
    assert "GET /health" in {f"{r.method} {r.path}" for r in template.routes()}
    health = api["RouteSettings"]["GET /health"]
    assert health == {"ThrottlingBurstLimit": 10, "ThrottlingRateLimit": 5}
    access_log = api["AccessLogSettings"]["Format"]
    assert "$context.requestId" in access_log
    assert "header" not in access_log  # nothing that can carry a token or a collector


def test_every_checkov_skip_has_a_reason(template: Template):
    for name, resource in template.resources.items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), name
            assert len(skip["comment"]) > 40, f"{name} {skip['id']}: say why"


def test_deploy_doc_documents_every_parameter_and_output(template: Template):
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    for name in [*template.body["Parameters"], *template.body["Outputs"]]:
        assert f"`{name}`" in deploy, f"docs/deploy.md does not mention {name}"


def test_cors_follows_the_parameter():
    assert Template(parameters=PARAMS, resource_refs=REFS).http_api_cors() is None  # blank: none
    cors = Template(
        parameters={
            **PARAMS,
            "CorsAllowOrigins": "https://www.partner.example,https://m.partner.example",
        },
        resource_refs=REFS,
    ).http_api_cors()
    assert cors is not None
    assert cors["AllowOrigins"] == ["https://www.partner.example", "https://m.partner.example"]
    assert set(cors["AllowMethods"]) == {"GET", "PUT"}
    assert set(cors["AllowHeaders"]) == {
        "Authorization",
        "Content-Type",
        "Idempotency-Key",
        "X-Correlation-Id",
        "X-Local-Time",
    }
    assert set(cors["ExposeHeaders"]) == {"X-Correlation-Id", "Idempotent-Replayed"}
