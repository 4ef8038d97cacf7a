"""Least privilege, evaluated: a recorded AWS call as the request AWS authorises (its action,
its resource's ARN, the context keys it carries), decided by a real IAM policy evaluator,
@cloud-copilot/iam-simulate (npm, pinned by requirements/iam-simulate; local/build.py installs
it, tests/support/iam_simulate.mjs runs it: one Node process per test session, requests in
batches over stdin and stdout), against

- the calling principal's policies as SAM generates them: template.yaml translated by
  samtranslator (tests/support/sam_translate.py), each function's role with its inline policies
  and the AWS managed policies SAM attaches; `AuditReaderPolicy` as a role holding it alone;
- the resource's policy: a KMS key's key policy (every other resource here has none).

moto authorises nothing: without this, a condition or key policy that denies every call in AWS
would pass every test.

The context keys a call carries, as AWS sets them from its parameters:
- DynamoDB: `dynamodb:LeadingKeys` (the partition key's value in its Key, Item, or the Query's
  key condition), `dynamodb:Attributes` (the attribute names it names: its key's, its item's,
  its expressions'), `dynamodb:ReturnValues` when it sets one;
- KMS: `kms:EncryptionContext:<name>` and `kms:EncryptionContextKeys`, `kms:MacAlgorithm`;
- Lambda: the function's ARN, the resource; Secrets Manager: `secretsmanager:SecretId`.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from local.build import installed_iam_simulate
from local.template import ROOT, TEMPLATE_PATH, Template
from tests.support.stack import clean_env

SAM_PYTHON = ROOT / ".venv" / "tools" / "sam" / "bin" / "python"
SIMULATOR = Path(__file__).with_name("iam_simulate.mjs")
TRANSLATOR = Path(__file__).with_name("sam_translate.py")

# The AWS managed policies SAM attaches to a function's role (its logs; X-Ray, `Tracing:
# Active`), as AWS publishes them. A role given another one fails `principals`: add its document.
MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": [
        {
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "Resource": "*",
        }
    ],
}
# Who holds AuditReaderPolicy (attached to support staff): a role with it alone.
AUDIT_READER = "AuditReaderPolicy"
# Words of DynamoDB's expression language: anything else bare in an expression is an attribute.
_EXPRESSION_WORDS = {"SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "IN", "BETWEEN"}
_BARE_NAME = re.compile(r"(?<![#:.\w])[A-Za-z_]\w*\b(?!\s*\()")


def translated_template(folder: Path) -> Path:
    """template.yaml translated by samtranslator, as JSON in `folder` (a `Template` reads it)."""
    if not SAM_PYTHON.exists():
        raise AssertionError("the SAM CLI is missing: run `make venv`")
    done = subprocess.run(
        [str(SAM_PYTHON), str(TRANSLATOR), str(TEMPLATE_PATH)],
        env=clean_env(AWS_DEFAULT_REGION="us-east-1"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    path = folder / "translated-template.json"
    path.write_text(done.stdout)
    return path


@dataclass(frozen=True)
class Principal:
    name: str  # the function's logical id, or AUDIT_READER
    arn: str
    policies: tuple[dict[str, Any], ...]  # iam-simulate's identity policies: {name, policy}


@dataclass(frozen=True)
class Request:
    action: str
    resource: str  # its ARN
    named: str  # the template resource it names (a logical id; a table's index: Table/index/Name)
    context: dict[str, str | list[str]] = field(hash=False)

    def __str__(self) -> str:
        return f"{self.action} on {self.named} {json.dumps(self.context, sort_keys=True)}"


class StackPolicies:
    """A deployed stack's principals and resource policies, from the translated template with
    the stack's parameters and resources (`template`: the stack's own `Template`)."""

    def __init__(self, translated: Path, template: Template) -> None:
        self.template = Template(
            translated,
            template.parameters,
            template.resource_refs,
            region=template.region,
            account_id=template.account_id,
        )
        self.source = template

    @cached_property
    def principals(self) -> dict[str, Principal]:
        """Each function's role, and AuditReaderPolicy's holder, by logical id."""
        found = {}
        for function in self.template.resources_of_type("AWS::Lambda::Function"):
            role_id = f"{function}Role"
            role = self.template.resources.get(role_id)
            if role is None or role["Type"] != "AWS::IAM::Role":
                continue
            props = role["Properties"]
            policies = [
                {"name": p["PolicyName"], "policy": self.template.resolve(p["PolicyDocument"])}
                for p in props.get("Policies", [])
            ]
            for arn in self.template.resolve(props.get("ManagedPolicyArns", [])):
                assert arn in MANAGED_POLICIES, f"{role_id}: add {arn}'s document to iam.py"
                statements = MANAGED_POLICIES[arn]
                policies.append({"name": arn, "policy": _document(statements)})
            arn = self.template.resolve({"Fn::GetAtt": [role_id, "Arn"]})
            found[function] = Principal(function, arn, tuple(policies))
        reader = self.template.resolve(
            self.template.resources[AUDIT_READER]["Properties"]["PolicyDocument"]
        )
        reader_arn = f"arn:aws:iam::{self.template.account_id}:role/audit-support"
        found[AUDIT_READER] = Principal(
            AUDIT_READER, reader_arn, ({"name": AUDIT_READER, "policy": reader},)
        )
        return found

    @cached_property
    def _resources(self) -> dict[str, tuple[str, str]]:
        """ARN -> (logical id, type) of the template's tables, keys, secret and functions."""
        named = {}
        for logical_id, resource in self.source.resources.items():
            kind = resource["Type"]
            if (
                kind in ("AWS::DynamoDB::Table", "AWS::KMS::Key")
                and logical_id in self.source.resource_refs
            ):
                arn = self.source.resolve({"Fn::GetAtt": [logical_id, "Arn"]})
                named[arn] = (logical_id, kind)
                named[self.source.resource_refs[logical_id]] = (logical_id, kind)
            elif kind == "AWS::SecretsManager::Secret" and logical_id in self.source.resource_refs:
                named[self.source.resource_refs[logical_id]] = (logical_id, kind)
            elif kind == "AWS::Serverless::Function":
                name = self.source.resolve(resource["Properties"]["FunctionName"])
                named[name] = (logical_id, kind)
        return named

    def key_policy(self, key_arn: str) -> dict[str, Any]:
        """The key policy of a key of the template; of any other key, KMS's default one (the
        account decides through IAM), as a key a partner creates has."""
        logical_id, kind = self._resources.get(key_arn, ("", ""))
        if kind == "AWS::KMS::Key":
            return self.template.resolve(
                self.template.resources[logical_id]["Properties"]["KeyPolicy"]
            )
        root = f"arn:aws:iam::{self.template.account_id}:root"
        return _document(
            [{"Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"}]
        )

    def request(self, action: str, params: dict[str, Any]) -> Request:
        """The request AWS authorises for a call recorded as (IAM action, its parameters)."""
        context: dict[str, str | list[str]] = {}
        if "TableName" in params:
            table, _kind = self._resources.get(params["TableName"], (params["TableName"], ""))
            resource = self.source.resolve({"Fn::GetAtt": [table, "Arn"]})
            named = table
            if "IndexName" in params:
                resource += f"/index/{params['IndexName']}"
                named += f"/index/{params['IndexName']}"
            context.update(self._dynamodb_context(table, params))
        elif "KeyId" in params:
            resource = self._key_arn(params["KeyId"])
            named = self._resources.get(resource, (resource, ""))[0]
            encryption_context = params.get("EncryptionContext", {})
            for name, value in encryption_context.items():
                context[f"kms:EncryptionContext:{name}"] = value
            if encryption_context:
                context["kms:EncryptionContextKeys"] = sorted(encryption_context)
            if "MacAlgorithm" in params:
                context["kms:MacAlgorithm"] = params["MacAlgorithm"]
        elif "FunctionName" in params:
            name = params["FunctionName"]
            resource = name if name.startswith("arn:") else self._function_arn(name)
            named = self._resources.get(resource.rsplit(":", 1)[-1], (name, ""))[0]
        elif "SecretId" in params:
            resource = params["SecretId"]
            named = self._resources.get(resource, (resource, ""))[0]
            context["secretsmanager:SecretId"] = resource
        elif "StackName" in params:  # the stack the template is deployed as, whatever its name
            resource = self.source.resolve({"Ref": "AWS::StackId"})
            named = "AWS::StackId"
        else:
            raise AssertionError(f"{action}: which resource? add it to iam.py ({params})")
        return Request(action, resource, named, context)

    def simulation(self, principal: Principal, request: Request) -> dict[str, Any]:
        """iam-simulate's input: the request by `principal`, under its policies and the
        resource's (a key policy)."""
        account = self.template.account_id
        context = {
            "aws:PrincipalArn": principal.arn,
            "aws:PrincipalAccount": account,
            **request.context,
        }
        simulation: dict[str, Any] = {
            "request": {
                "principal": principal.arn,
                "action": request.action,
                "resource": {"resource": request.resource, "accountId": account},
                "contextVariables": context,
            },
            "identityPolicies": list(principal.policies),
            "serviceControlPolicies": [],
            "resourceControlPolicies": [],
        }
        if request.action.startswith("kms:"):
            simulation["resourcePolicy"] = self.key_policy(request.resource)
        return simulation

    def _dynamodb_context(self, table: str, params: dict[str, Any]) -> dict[str, str | list[str]]:
        context: dict[str, str | list[str]] = {}
        names = params.get("ExpressionAttributeNames", {})
        item = params.get("Key") or params.get("Item") or {}
        attributes = set(item)
        for name in ("UpdateExpression", "ConditionExpression", "ProjectionExpression"):
            expression = params.get(name, "")
            attributes |= {names.get(n, n) for n in re.findall(r"#\w+", expression)}
            attributes |= set(_BARE_NAME.findall(expression)) - _EXPRESSION_WORDS
        if attributes:
            context["dynamodb:Attributes"] = sorted(attributes)
        partition = self._partition_key(table, params.get("IndexName"))
        if partition in item:
            context["dynamodb:LeadingKeys"] = [_scalar(item[partition])]
        elif "KeyConditionExpression" in params:
            values = params.get("ExpressionAttributeValues", {})
            for left, right in re.findall(
                r"(#?\w+)\s*=\s*(:\w+)", params["KeyConditionExpression"]
            ):
                if names.get(left, left) == partition:
                    context["dynamodb:LeadingKeys"] = [_scalar(values[right])]
        if "ReturnValues" in params:
            context["dynamodb:ReturnValues"] = params["ReturnValues"]
        return context

    def _partition_key(self, table: str, index: str | None) -> str:
        definition = self.source.table_definition(table)
        schemas = [definition["KeySchema"]] + [
            i["KeySchema"]
            for i in definition.get("GlobalSecondaryIndexes", [])
            if i["IndexName"] == index
        ]
        schema = schemas[-1] if index else schemas[0]
        return next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")

    def _key_arn(self, key_id: str) -> str:
        if key_id.startswith("arn:"):
            return key_id
        return f"arn:aws:kms:{self.template.region}:{self.template.account_id}:key/{key_id}"

    def _function_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.template.region}:{self.template.account_id}:function:{name}"


class Evaluator:
    """iam-simulate in a Node process of its own, for the test session, and the template as
    SAM translates it (`translated`, from `translated_template`)."""

    def __init__(self, translated: Path) -> None:
        self.translated = translated
        node, folder = installed_iam_simulate()
        self._process = subprocess.Popen(
            [node, str(SIMULATOR), str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def policies(self, template: Template) -> StackPolicies:
        """The principals and resource policies of a stack (`template`: its own)."""
        return StackPolicies(self.translated, template)

    def decide(self, simulations: list[dict[str, Any]]) -> list[str]:
        """Each simulation's decision: "Allowed", "ImplicitlyDenied" or "ExplicitlyDenied"
        (an input iam-simulate refuses fails here, with its reasons)."""
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(simulations) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        assert line, f"iam-simulate stopped (exit status {self._process.poll()})"
        answers = json.loads(line)
        refused = [
            f"{s['request']['action']} by {s['request']['principal']}: {a['errors']}"
            for s, a in zip(simulations, answers, strict=True)
            if a["decision"] == "Error"
        ]
        assert not refused, "iam-simulate refused its input:\n" + "\n".join(refused)
        return [answer["decision"] for answer in answers]

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=10)


# Who else the template means to allow each call (by action, and the resource it names): the
# caller always, these besides; any other principal is denied. An UpdateItem of an audit
# record is the caller's alone: update-state and the reconciler may each change other fields.
_GET, _UPDATE, _RECONCILER, _REFRESHER = (
    "GetStateFunction",
    "UpdateStateFunction",
    "ReconcilePendingFunction",
    "TokenRefresherFunction",
)
_SHARED = {
    ("secretsmanager:GetSecretValue", "AirMilesSecret"): {_GET, _UPDATE, _REFRESHER},
    ("dynamodb:GetItem", "AuditTable"): {_GET, _UPDATE},
    ("dynamodb:PutItem", "AuditTable"): {_GET, _UPDATE},
    ("kms:GenerateMac", "PseudonymKey"): {_GET, _UPDATE, AUDIT_READER},
    ("dynamodb:GetItem", "TokenTable"): {_GET, _UPDATE, _REFRESHER},
    ("kms:Decrypt", "TokenKey"): {_GET, _UPDATE},
    ("lambda:InvokeFunction", "TokenRefresherFunction"): {_GET, _UPDATE},
    # The audit reader's own calls (DescribeStacks, Query of the table and CorrelationIndex)
    # and the functions' others (the idempotency table, the reconciler's PendingIndex query,
    # the token's UpdateItem and Encrypt) are the caller's alone.
}
# The context keys the template's conditions hold each call to: the same call with any of them
# changed (an encryption context's, missing too) is denied to its caller.
_CONDITIONED = {
    ("dynamodb:GetItem", "TokenTable"): ("dynamodb:LeadingKeys",),
    ("dynamodb:UpdateItem", "TokenTable"): ("dynamodb:LeadingKeys",),
    ("kms:Decrypt", "TokenKey"): ("kms:EncryptionContext:",),
    ("kms:Encrypt", "TokenKey"): ("kms:EncryptionContext:",),
    ("kms:GenerateMac", "PseudonymKey"): ("kms:MacAlgorithm",),
    ("dynamodb:UpdateItem", "AuditTable"): ("dynamodb:Attributes", "dynamodb:ReturnValues"),
}


def assert_evaluated(
    aws_calls: list[tuple[str, dict[str, Any]]], template: Template, iam: Evaluator, caller: str
) -> None:
    """Every recorded call, evaluated by iam-simulate against the principals' policies as SAM
    generates them and the key policies: allowed to `caller`, denied to every other principal
    the template does not mean to allow it (`_SHARED`), and denied to `caller` outside the
    conditions the template holds it to (`_CONDITIONED`)."""
    policies = iam.policies(template)
    requests = list({str(r): r for r in (policies.request(a, p) for a, p in aws_calls)}.values())
    cases: list[tuple[str, Request, bool]] = []
    for request in requests:
        allowed = {caller} | _SHARED.get((request.action, request.named), set())
        cases += [(name, request, name in allowed) for name in policies.principals]
        conditions = _CONDITIONED.get((request.action, request.named))
        if conditions:
            cases += [(caller, outside, False) for outside in _outside(request, conditions)]
    decisions = iam.decide(
        [policies.simulation(policies.principals[name], request) for name, request, _ in cases]
    )
    wrong = [
        f"{name}: {request}: {decision}, expected {'Allowed' if expected else 'denied'}"
        for (name, request, expected), decision in zip(cases, decisions, strict=True)
        if (decision == "Allowed") != expected
    ]
    assert not wrong, "\n".join(wrong)
    conditioned = [r for r in requests if (r.action, r.named) in _CONDITIONED]
    assert conditioned, "the paths above make calls that a condition holds"


def _outside(request: Request, keys: tuple[str, ...]) -> list[Request]:
    """The request with each context key named by (a prefix in) `keys` changed, and each
    encryption context's also missing."""
    variants = []
    for key, value in request.context.items():
        if not key.startswith(keys) or key == "kms:EncryptionContextKeys":
            continue
        changed = [*value, "notGranted"] if isinstance(value, list) else f"{value}-other"
        variants.append(replace(request, context={**request.context, key: changed}))
        if key.startswith("kms:EncryptionContext:"):
            missing = {k: v for k, v in request.context.items() if k != key}
            variants.append(replace(request, context=missing))
    if "dynamodb:ReturnValues" in keys and "dynamodb:ReturnValues" not in request.context:
        variants.append(
            replace(request, context={**request.context, "dynamodb:ReturnValues": "ALL_OLD"})
        )
    assert variants, f"{request}: none of {keys} to change"
    return variants


def _document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


def _scalar(value: dict[str, Any]) -> str:
    """A DynamoDB attribute value ({"S": "x"}, {"N": "1"}) as the string IAM compares."""
    ((_kind, text),) = value.items()
    return str(text)
