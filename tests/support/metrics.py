"""The CloudWatch metrics a function emitted, read back from its output (Embedded Metric
Format: one JSON document per line, as Powertools prints them to stdout)."""

from __future__ import annotations

import json
from typing import Any


def emitted(output: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every value of metric `name` in `output`, each with its dimensions (name -> value),
    in the order printed."""
    found = []
    for line in output.splitlines():
        try:
            document: Any = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict) or "_aws" not in document:
            continue
        for directive in document["_aws"]["CloudWatchMetrics"]:
            if name not in {metric["Name"] for metric in directive["Metrics"]}:
                continue
            values = document[name] if isinstance(document[name], list) else [document[name]]
            for dimension_set in directive["Dimensions"]:
                dimensions = {key: document[key] for key in dimension_set}
                found += [(dimensions, float(value)) for value in values]
    return found
