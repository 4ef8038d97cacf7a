"""Least privilege, both sides: what an IAM policy in template.yaml grants, and what code
asked of AWS, as (action, resource ARN) pairs that compare."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from local.template import Template

# The API operations whose IAM action has another name.
IAM_ACTIONS = {"lambda:Invoke": "lambda:InvokeFunction"}


def permissions(template: Template, function: str) -> set[tuple[str, str]]:
    """What a function's policies grant, and what the template's KMS key policies grant its
    role (a key policy's `*` is that key)."""
    own = granted(template.resolve(template.function_properties(function)["Policies"]))
    role = template.resolve({"Fn::GetAtt": [f"{function}Role", "Arn"]})
    return own | key_policy_permissions(template, role)


def key_policy_permissions(template: Template, principal: str) -> set[tuple[str, str]]:
    """What the key policies of the template's KMS keys grant `principal` (an ARN) by name."""
    pairs = set()
    for logical_id, resource in template.resources_of_type("AWS::KMS::Key").items():
        if "Condition" in resource and not template.condition(resource["Condition"]):
            continue
        key_arn = template.resolve({"Fn::GetAtt": [logical_id, "Arn"]})
        policy = template.resolve(resource["Properties"]["KeyPolicy"])
        for statement in policy["Statement"]:
            named = statement["Principal"]["AWS"]
            if principal in ([named] if isinstance(named, str) else named):
                pairs |= {
                    (action, key_arn)
                    for (action, _any_key) in granted([{"Statement": [statement]}])
                }
    return pairs


def policy_permissions(template: Template, logical_id: str) -> set[tuple[str, str]]:
    """What a managed policy resource (`AWS::IAM::ManagedPolicy`) grants."""
    document = template.resolve(template.resources[logical_id]["Properties"]["PolicyDocument"])
    return granted([document])


def granted(policies: list[dict[str, Any]]) -> set[tuple[str, str]]:
    pairs = set()
    for policy in policies:
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"]
            resources = statement["Resource"]
            for action in [actions] if isinstance(actions, str) else actions:
                for resource in [resources] if isinstance(resources, str) else resources:
                    pairs.add((action, resource))
    return pairs


@contextmanager
def recorded_aws_calls() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """(IAM action, request parameters) of every AWS call made meanwhile by clients of boto3's
    default session created meanwhile (call `fresh_boto3_session` before and after)."""
    session = boto3.DEFAULT_SESSION
    assert session is not None
    recorded: list[tuple[str, dict[str, Any]]] = []

    def record(model: Any, params: dict[str, Any], **_kwargs: Any) -> None:
        action = f"{model.service_model.signing_name}:{model.name}"
        recorded.append((IAM_ACTIONS.get(action, action), dict(params)))

    session.events.register("before-parameter-build.*.*", record)
    try:
        yield recorded
    finally:
        session.events.unregister("before-parameter-build.*.*", record)


def as_arns(
    calls: list[tuple[str, dict[str, Any]]], template: Template, refs: dict[str, str]
) -> set[tuple[str, str]]:
    """The calls as (action, resource ARN), the local resources' names and ids turned into
    the ARNs the template's policies name."""
    arns = {
        name: template.resolve({"Fn::GetAtt": [logical_id, "Arn"]})
        for logical_id, name in refs.items()
        if template.resources.get(logical_id, {}).get("Type")
        in ("AWS::DynamoDB::Table", "AWS::KMS::Key")
    }
    pairs = set()
    for action, params in calls:
        if "TableName" in params:
            resource = arns.get(params["TableName"], params["TableName"])
            if "IndexName" in params:
                resource += f"/index/{params['IndexName']}"
        elif "KeyId" in params:
            resource = arns.get(params["KeyId"], params["KeyId"])
        elif "FunctionName" in params:
            lambda_arn = "arn:aws:lambda:{}:{}:function:{}".format
            resource = lambda_arn(template.region, template.account_id, params["FunctionName"])
        else:
            resource = params.get("SecretId") or params.get("StackName") or "?"
        pairs.add((action, resource))
    return pairs
