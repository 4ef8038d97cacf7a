"""The AWS resources of template.yaml, created in moto (in-process or server mode) from the
template's own definitions, so a change to a table, the secret or a KMS key reaches the tests
and the local stack without a copy to keep in step."""

from __future__ import annotations

import json
import secrets
from typing import Any

from local.template import Template


def resource_name(prefix: str, logical_id: str) -> str:
    """The physical name of a table or secret made here (what `Ref` gives for a table)."""
    return f"{prefix}-{logical_id}"


def key_alias(prefix: str, logical_id: str) -> str:
    """The alias a KMS key made here is found by (a key has no name of its own)."""
    return f"alias/{resource_name(prefix, logical_id)}"


def provision(
    template: Template,
    *,
    dynamodb: Any,
    secretsmanager: Any,
    kms: Any,
    prefix: str,
    credentials: dict[str, str],
) -> dict[str, str]:
    """Create every table, secret and KMS key the template's conditions keep; returns what
    `Ref` gives for each (names, ARNs, key ids)."""
    refs: dict[str, str] = {}
    for logical_id in template.resources_of_type("AWS::DynamoDB::Table"):
        name = resource_name(prefix, logical_id)
        dynamodb.create_table(TableName=name, **template.table_definition(logical_id))
        ttl = template.time_to_live(logical_id)
        if ttl:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        refs[logical_id] = name
    # After the tables: a key's policy may name one (the token key's encryption context).
    with_tables = template.with_resource_refs(refs)
    for logical_id, resource in template.resources_of_type("AWS::KMS::Key").items():
        if not _kept(template, resource):
            continue
        props = with_tables.resolve(resource["Properties"])
        key_id = kms.create_key(
            Description=props["Description"],
            KeySpec=props["KeySpec"],
            KeyUsage=props["KeyUsage"],
            Policy=json.dumps(props["KeyPolicy"]),
        )["KeyMetadata"]["KeyId"]
        if props.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=key_id)
        kms.create_alias(AliasName=key_alias(prefix, logical_id), TargetKeyId=key_id)
        refs[logical_id] = key_id
    for logical_id, resource in template.resources_of_type("AWS::SecretsManager::Secret").items():
        if not _kept(template, resource):
            continue
        refs[logical_id] = secretsmanager.create_secret(
            Name=resource_name(prefix, logical_id),
            SecretString=json.dumps(secret_value(resource, credentials)),
        )["ARN"]
    return refs


def secret_value(resource: dict[str, Any], credentials: dict[str, str]) -> dict[str, str]:
    """The secret as the template shapes it: its template keys filled from `credentials`,
    its generated key (the audit pepper) random, as Secrets Manager would generate it."""
    generate = resource["Properties"]["GenerateSecretString"]
    value = json.loads(generate["SecretStringTemplate"])
    missing = set(value) - set(credentials)
    if missing:
        raise KeyError(f"no local value for secret keys {sorted(missing)}")
    value.update({k: credentials[k] for k in value})
    value[generate["GenerateStringKey"]] = secrets.token_urlsafe(36)
    return value


def _kept(template: Template, resource: dict[str, Any]) -> bool:
    """Whether the resource's `Condition` (if any) holds for the template's parameters."""
    return "Condition" not in resource or template.condition(resource["Condition"])
