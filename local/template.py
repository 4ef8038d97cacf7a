"""template.yaml as the local stack and the tests see it: one source for routes, tables,
function settings and environment variables, never a copy of them.

Only the intrinsic functions the template uses are resolved (Ref, Fn::Sub, Fn::GetAtt, of a
function's generated role too, Fn::If, Fn::Equals, Fn::Not, Fn::And, Fn::Or, Fn::FindInMap,
Fn::Split, Fn::Join, Fn::Select); anything else raises, so a template change that the local
stack cannot honour fails loudly instead of running with a wrong value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, ClassVar

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"
NO_VALUE = object()  # AWS::NoValue: the property disappears
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, !If ...)."""


def _tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(
            None, None, f"unexpected YAML node {type(node).__name__}"
        )
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


@lru_cache(maxsize=8)
def _parsed(path: Path, _mtime_ns: int) -> dict[str, Any]:
    # Parsing takes a tenth of a second and tests build many Templates: once per version.
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - a SafeLoader


def resource_ids(resource_type: str, path: Path = TEMPLATE_PATH) -> list[str]:
    """The logical ids of the template's resources of one type, in template order (no
    parameter values needed, unlike a `Template`)."""
    resources = _parsed(path, path.stat().st_mtime_ns)["Resources"]
    return [k for k, v in resources.items() if v["Type"] == resource_type]


def function_ids(path: Path = TEMPLATE_PATH) -> list[str]:
    """The template's Lambda functions."""
    return resource_ids("AWS::Serverless::Function", path)


@dataclass(frozen=True)
class Route:
    """One HttpApi route: who serves it and which scopes its authorizer demands."""

    method: str
    path: str
    function: str
    authorizer: str | None
    scopes: tuple[str, ...]

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """The path as a regex; `{name}` matches one segment, `{name+}` the rest."""
        regex = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(self.path))
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex)
        return re.compile(f"^{regex}$")


class Template:
    """The parsed template plus the values local resources stand in for."""

    def __init__(
        self,
        path: Path = TEMPLATE_PATH,
        parameters: Mapping[str, str] | None = None,
        resource_refs: Mapping[str, str] | None = None,
        region: str = "us-east-1",
        account_id: str = "123456789012",
    ) -> None:
        self.path = path
        self.body = _parsed(path, path.stat().st_mtime_ns)  # shared: never mutated
        self.region = region
        self.account_id = account_id
        self.parameters = self._parameter_values(parameters or {})
        # What Ref gives for a resource locally (a table name, a secret ARN ...).
        self.resource_refs = dict(resource_refs or {})

    def with_resource_refs(self, refs: Mapping[str, str]) -> Template:
        """The same template and parameters, with what `Ref` gives for `refs` as well."""
        return Template(
            self.path,
            self.parameters,
            {**self.resource_refs, **refs},
            region=self.region,
            account_id=self.account_id,
        )

    # ---------------------------------------------------------------- reading

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.body["Resources"]

    def resources_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    def function_properties(self, logical_id: str) -> dict[str, Any]:
        """A function's properties with `Globals.Function` merged in, as SAM merges them."""
        merged = dict(self.body.get("Globals", {}).get("Function", {}))
        own = self.resources[logical_id]["Properties"]
        for key, value in own.items():
            if key == "Environment":
                variables = {
                    **merged.get("Environment", {}).get("Variables", {}),
                    **value.get("Variables", {}),
                }
                merged["Environment"] = {"Variables": variables}
            else:
                merged[key] = value
        return merged

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """Exactly the environment variables the template gives the function, resolved."""
        variables = self.function_properties(logical_id).get("Environment", {}).get("Variables", {})
        resolved = {name: self.resolve(value) for name, value in variables.items()}
        return {k: str(v) for k, v in resolved.items() if v is not NO_VALUE}

    def routes(self) -> list[Route]:
        """Every HttpApi route the functions declare."""
        routes = []
        for logical_id, resource in self.resources_of_type("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event["Type"] != "HttpApi":
                    continue
                props = event["Properties"]
                auth = props.get("Auth", {})
                authorizer = auth.get("Authorizer") or self._default_authorizer()
                routes.append(
                    Route(
                        method=props["Method"].upper(),
                        path=props["Path"],
                        function=logical_id,
                        authorizer=None if authorizer == "NONE" else authorizer,
                        scopes=tuple(auth.get("AuthorizationScopes", ())),
                    )
                )
        return routes

    def table_definition(self, logical_id: str) -> dict[str, Any]:
        """`create_table` arguments for a DynamoDB table resource (name chosen by the caller)."""
        props = self.resources[logical_id]["Properties"]
        definition: dict[str, Any] = {
            key: self.resolve(props[key])
            for key in (
                "AttributeDefinitions",
                "KeySchema",
                "BillingMode",
                "GlobalSecondaryIndexes",
            )
            if key in props
        }
        return definition

    def time_to_live(self, logical_id: str) -> dict[str, Any] | None:
        spec = self.resources[logical_id]["Properties"].get("TimeToLiveSpecification")
        return self.resolve(spec) if spec else None

    def http_api_cors(self) -> dict[str, Any] | None:
        for resource in self.resources_of_type("AWS::Serverless::HttpApi").values():
            cors = self.resolve(resource["Properties"].get("CorsConfiguration", NO_VALUE))
            return None if cors is NO_VALUE else cors
        return None

    def _default_authorizer(self) -> str | None:
        for resource in self.resources_of_type("AWS::Serverless::HttpApi").values():
            return resource["Properties"].get("Auth", {}).get("DefaultAuthorizer")
        return None

    def _parameter_values(self, given: Mapping[str, str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, spec in self.body.get("Parameters", {}).items():
            value = given.get(name, spec.get("Default"))
            if value is None:
                raise ValueError(f"template parameter {name} has no default: give a value")
            if spec["Type"] == "CommaDelimitedList" and isinstance(value, str):
                value = [v.strip() for v in value.split(",")]
            values[name] = value if isinstance(value, list) else str(value)
        unknown = set(given) - set(values)
        if unknown:
            raise ValueError(f"unknown template parameters: {sorted(unknown)}")
        return values

    # ---------------------------------------------------------------- resolving

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                return self._intrinsic(key, arg)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.body["Conditions"][name]))

    def _intrinsic(self, key: str, arg: Any) -> Any:
        resolver = self._INTRINSICS.get(key)
        if resolver is None:
            raise NotImplementedError(f"{key} is not resolved locally")
        return resolver(self, arg)

    def _fn_if(self, arg: Any) -> Any:
        name, if_true, if_false = arg
        return self.resolve(if_true if self.condition(name) else if_false)

    def _fn_equals(self, arg: Any) -> bool:
        left, right = (self.resolve(a) for a in arg)
        return str(left) == str(right)

    def _fn_find_in_map(self, arg: Any) -> Any:
        mapping, top, second = (self.resolve(a) for a in arg)
        return self.body["Mappings"][mapping][top][second]

    def _fn_split(self, arg: Any) -> list[str]:
        separator, text = arg
        return str(self.resolve(text)).split(separator)

    def _fn_join(self, arg: Any) -> str:
        separator: str
        separator, items = arg
        return separator.join(str(i) for i in self.resolve(items))

    def _fn_select(self, arg: Any) -> Any:
        index, items = arg
        return self.resolve(items)[int(self.resolve(index))]

    def _fn_get_att(self, arg: Any) -> str:
        logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
        return self._get_att(logical_id, attribute)

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": "offer-state-local",
            "AWS::StackId": (
                f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/offer-state-local/local"
            ),
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resource_refs:
            return self.resource_refs[name]
        raise KeyError(f"no local value for Ref {name}")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        # The execution role SAM generates for a function without a Role of its own (or that
        # role in the translated template, tests/support/sam_translate.py).
        function = self.resources.get(logical_id.removesuffix("Role"), {})
        role = self.resources.get(logical_id, {}).get("Type") == "AWS::IAM::Role"
        if (
            logical_id.endswith("Role")
            and attribute == "Arn"
            and (function.get("Type") == "AWS::Serverless::Function" or role)
        ):
            stack = self._ref("AWS::StackName")
            return f"arn:aws:iam::{self.account_id}:role/{stack}-{logical_id}"
        resource_type = self.resources[logical_id]["Type"]
        if attribute == "Arn" and resource_type == "AWS::DynamoDB::Table":
            name = self._ref(logical_id)
            return f"arn:aws:dynamodb:{self.region}:{self.account_id}:table/{name}"
        if attribute == "Arn" and resource_type == "AWS::KMS::Key":
            key_id = self._ref(logical_id)  # what Ref gives for a key: its id
            return f"arn:aws:kms:{self.region}:{self.account_id}:key/{key_id}"
        raise KeyError(f"no local value for GetAtt {logical_id}.{attribute}")

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name:
                return str(self._get_att(*name.split(".", 1)))
            return str(self._ref(name))

        return _SUB_VARIABLE.sub(replace, text)

    # Each intrinsic function resolved locally, by its key: one small resolver per function
    # instead of one chain of ifs. A key missing here is refused (the module docstring's rule).
    _INTRINSICS: ClassVar[dict[str, Callable[[Template, Any], Any]]] = {
        "Ref": _ref,
        "Condition": condition,
        "Fn::If": _fn_if,
        "Fn::Equals": _fn_equals,
        "Fn::Not": lambda self, arg: not self.resolve(arg[0]),
        "Fn::And": lambda self, arg: all(self.resolve(a) for a in arg),
        "Fn::Or": lambda self, arg: any(self.resolve(a) for a in arg),
        "Fn::FindInMap": _fn_find_in_map,
        "Fn::Split": _fn_split,
        "Fn::Join": _fn_join,
        "Fn::Select": _fn_select,
        "Fn::GetAtt": _fn_get_att,
        "Fn::Sub": _sub,
    }
