"""What template.yaml promises: least privilege, the layer, tracing, logs, a durable audit
table, gradual deployment, and a README that documents its parameters and outputs."""

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
    **{f"{f}ErrorsAlarm": f"{f}-errors" for f in ("GetState", "UpdateState")},
    **{f"{f}Handled5xxRateAlarm": f"{f}-5xx" for f in ("GetState", "UpdateState")},
    "AuditWriteFailuresAlarm": "audit-failures",
}
FUNCTIONS = ("GetStateFunction", "UpdateStateFunction")  # the two behind the API
AUDIT_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/audit"
IDEMPOTENCY_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/idempotency"
SECRET_ARN = REFS["AirMilesSecret"]

# What each function's code calls (tests/functions/test_least_privilege.py checks the code
# side: these are exactly the calls it makes).
EXPECTED_PERMISSIONS = {
    "GetStateFunction": {
        ("secretsmanager:GetSecretValue", SECRET_ARN),
        ("dynamodb:GetItem", AUDIT_ARN),  # a retried PutItem's item read back
        ("dynamodb:PutItem", AUDIT_ARN),
    },
    "UpdateStateFunction": {
        ("secretsmanager:GetSecretValue", SECRET_ARN),
        ("dynamodb:GetItem", AUDIT_ARN),
        ("dynamodb:PutItem", AUDIT_ARN),
        ("dynamodb:UpdateItem", AUDIT_ARN),
        ("dynamodb:GetItem", IDEMPOTENCY_ARN),
        ("dynamodb:PutItem", IDEMPOTENCY_ARN),
        ("dynamodb:UpdateItem", IDEMPOTENCY_ARN),
        ("dynamodb:DeleteItem", IDEMPOTENCY_ARN),
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
    for function in FUNCTIONS:
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


def test_readme_documents_every_parameter_and_output(template: Template):
    readme = (ROOT / "README.md").read_text()
    for name in [*template.body["Parameters"], *template.body["Outputs"]]:
        assert f"`{name}`" in readme, f"README does not mention {name}"


def test_cors_follows_the_parameter():
    assert Template(parameters=PARAMS, resource_refs=REFS).http_api_cors() is None  # blank: none
    cors = Template(
        parameters={
            **PARAMS,
            "CorsAllowOrigins": "https://www.partner.example,https://m.partner.example",
        },
        resource_refs=REFS,
    ).http_api_cors()
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
