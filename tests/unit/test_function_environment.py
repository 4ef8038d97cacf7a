"""What a local function environment is started with: SnapStart mode where the template
enables it (and `LOCAL_SNAPSTART=0` turns it off), and the scheduled functions' periods."""

from __future__ import annotations

import pytest

from local.functions import FunctionSpec
from local.stack import schedule_period, template_parameters
from local.template import Template, resource_ids

PROVISIONED = ("AWS::DynamoDB::Table", "AWS::SecretsManager::Secret", "AWS::KMS::Key")


@pytest.fixture
def template() -> Template:
    refs = {name: f"local-{name}" for kind in PROVISIONED for name in resource_ids(kind)}
    parameters = template_parameters("http://127.0.0.1:1", "http://127.0.0.1:2")
    return Template(parameters=parameters, resource_refs=refs)


def _mode(template: Template, function: str) -> str:
    spec = FunctionSpec.from_template(template, function, "http://127.0.0.1:3")
    return spec.environment["AWS_LAMBDA_INITIALIZATION_TYPE"]


def test_snapstart_mode_where_the_template_enables_it(template: Template):
    assert _mode(template, "GetStateFunction") == "snap-start"
    assert _mode(template, "UpdateStateFunction") == "snap-start"
    assert _mode(template, "TokenRefresherFunction") == "on-demand"  # ApplyOn: None
    parameters = {**template.parameters, "SnapStart": "None"}
    off = Template(parameters=parameters, resource_refs=template.resource_refs)
    assert _mode(off, "GetStateFunction") == "on-demand"


def test_local_snapstart_0_turns_it_off_and_anything_else_is_refused(
    template: Template, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("LOCAL_SNAPSTART", "0")
    assert _mode(template, "GetStateFunction") == "on-demand"
    monkeypatch.setenv("LOCAL_SNAPSTART", "off")
    with pytest.raises(SystemExit, match="LOCAL_SNAPSTART"):
        _mode(template, "GetStateFunction")


def test_the_environment_has_what_lambda_sets(template: Template):
    env = FunctionSpec.from_template(template, "GetStateFunction", "http://127.0.0.1:3").environment
    assert env["_HANDLER"] == "app.lambda_handler"
    # The deployed name (the template's FunctionName), not the logical id.
    name = template.resolve(template.function_properties("GetStateFunction")["FunctionName"])
    assert name.endswith("-get-state")
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    spec = FunctionSpec.from_template(template, "GetStateFunction", "http://127.0.0.1:3")
    assert spec.arn == f"arn:aws:lambda:{template.region}:{template.account_id}:function:{name}"
    assert env["LAMBDA_TASK_ROOT"].endswith("functions/get_state")
    assert env["TZ"] == ":UTC"


@pytest.mark.parametrize(
    ("function", "variable"),
    [
        ("TokenRefresherFunction", "LOCAL_TOKEN_REFRESH_SECONDS"),
        ("ReconcilePendingFunction", "LOCAL_RECONCILE_SECONDS"),
    ],
)
def test_a_schedule_runs_on_the_templates_period_or_its_local_override(
    template: Template, monkeypatch: pytest.MonkeyPatch, function: str, variable: str
):
    monkeypatch.delenv(variable, raising=False)
    assert schedule_period(template, function) == 300  # rate(5 minutes)
    monkeypatch.setenv(variable, "2.5")
    assert schedule_period(template, function) == 2.5
    monkeypatch.setenv(variable, "0")
    with pytest.raises(SystemExit, match=variable):
        schedule_period(template, function)
