"""template.yaml as SAM deploys it: run by the SAM CLI's Python (.venv/tools/sam, which has
samtranslator, the library `sam deploy` and CloudFormation's transform use), it prints the
translated CloudFormation template as JSON: the functions' generated roles with their policies,
intrinsic functions left as they are.

    .venv/tools/sam/bin/python tests/support/sam_translate.py template.yaml

Local code folders become S3 locations first, as `sam package` does; no AWS call is made (the
policies name no managed policy that would need IAM to look up)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

_CODE = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


def main(path: str) -> int:
    body = yaml_parse(Path(path).read_text())
    for logical_id, resource in body["Resources"].items():
        if resource["Type"] in _CODE:
            resource["Properties"][_CODE[resource["Type"]]] = f"s3://packaged/{logical_id}"
    try:
        translated = transform(body, {}, None)
    except InvalidDocumentException as error:
        print("\n".join(str(cause) for cause in error.causes), file=sys.stderr)
        return 1
    json.dump(translated, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
