"""What must never leave the gateway: the client secret, an AIR MILES access token, the audit
pepper, or a collector number in clear (11 digits; masked forms like `*******0110` are fine).

Test helpers `record` what the product says (answer bodies, audit and idempotency items, the
shared token's item with its binary ciphertext read as text, the local stack's output); the
autouse fixture in tests/conftest.py adds everything the test wrote
to stdout and stderr (the functions' log lines and metrics) and fails the test on a finding.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from typing import Any

from local.sandbox import AUDIENCE, CLIENT_SECRET, COLLECTOR_CLAIM

# 11 digits standing alone: inside a hex digest, an id, base64 (a JWT) or the fraction of a
# float (a latency metric) they are not a collector number, and a random run of them would
# fail tests for nothing.
_ELEVEN_DIGITS = re.compile(r"(?<![0-9A-Za-z_.-])\d{11}(?![0-9A-Za-z_-])")
_JWT = re.compile(r"eyJ[\w-]+\.(eyJ[\w-]+)\.[\w-]+")
_recorded: list[tuple[str, str]] = []
_secrets: set[str] = {CLIENT_SECRET}


def record(source: str, value: Any) -> None:
    """Keep something the product said, for the end-of-test check."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    _recorded.append((source, text))


def remember_secret(value: str) -> None:
    """A value that must never appear (an audit pepper of a stack made for a test)."""
    if value:
        _secrets.add(value)


def take() -> list[tuple[str, str]]:
    taken = list(_recorded)
    _recorded.clear()
    return taken


def log_lines(message: str) -> list[dict[str, Any]]:
    """The gateway's log lines so far with this `message`, parsed (left for the check)."""
    lines = [json.loads(text) for source, text in _recorded if source == "log line"]
    return [line for line in lines if line.get("message") == message]


def findings(source: str, text: str) -> list[str]:
    found = [f"{source}: a secret value" for s in _secrets if s in text]
    found += [
        f"{source}: collector number in clear ({m.group()[:3]}…)"
        for m in _ELEVEN_DIGITS.finditer(text)
    ]
    for match in _JWT.finditer(text):
        if _is_air_miles_token(match.group(1)):
            found.append(f"{source}: an AIR MILES access token")
    return found


def _is_air_miles_token(payload: str) -> bool:
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return False
    audiences = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
    return AUDIENCE in audiences or COLLECTOR_CLAIM in claims


class LogRecorder(logging.Handler):
    """Keeps every line the gateway's Logger writes, formatted exactly as it writes it."""

    def emit(self, record: logging.LogRecord) -> None:
        record_line = self.format(record)
        _recorded.append(("log line", record_line))
