"""What a function's IAM policies in template.yaml grant, as (action, resource) pairs."""

from __future__ import annotations

from local.template import Template


def permissions(template: Template, function: str) -> set[tuple[str, str]]:
    granted = set()
    for policy in template.resolve(template.function_properties(function)["Policies"]):
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"]
            resources = statement["Resource"]
            for action in [actions] if isinstance(actions, str) else actions:
                for resource in [resources] if isinstance(resources, str) else resources:
                    granted.add((action, resource))
    return granted
