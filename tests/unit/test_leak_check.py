"""The leak check itself must be able to fail (tests/support/leaks.py)."""

from __future__ import annotations

import base64
import json

from local.sandbox import AUDIENCE, CLIENT_SECRET, COLLECTOR_CLAIM
from tests.support import leaks


def _jwt(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def test_each_kind_of_leak_is_found():
    leaks.remember_secret("pepper-for-this-test-0123456789")
    text = " ".join(
        [
            f"secret={CLIENT_SECRET}",
            "pepper=pepper-for-this-test-0123456789",
            '{"collector": "80000000110"}',
            f"Bearer {_jwt({'aud': AUDIENCE, 'sub': 'x'})}",
            f"member {_jwt({COLLECTOR_CLAIM: '80000000001', 'aud': 'https://members.loyalty.com'})}",
        ]
    )
    found = leaks.findings("sample", text)
    assert sum("a secret value" in f for f in found) == 2
    assert sum("collector number in clear" in f for f in found) == 1
    assert sum("AIR MILES access token" in f for f in found) == 2


def test_masked_numbers_ids_digests_and_other_tokens_are_fine():
    text = " ".join(
        [
            "*******0110",
            "COLLECTOR#a65812340977b0c",
            "9a3c1e5e-0a36-4d57-9d1c-000000000001",
            "1795655650583",  # epoch milliseconds
            '"UpstreamLatency":[2.12345678901]',  # a float's fraction
            f"Bearer {_jwt({'aud': 'offer-state-gateway', 'collector_number': '80000000110'})}",
        ]
    )
    assert leaks.findings("sample", text) == []


def test_a_token_kept_in_clear_in_a_binary_attribute_is_found():
    from boto3.dynamodb.types import Binary

    from tests.support.tables import StackTables

    token = _jwt({"aud": AUDIENCE, "sub": "x"})

    class OneItem(StackTables):
        def table_items(self, logical_id: str) -> list[dict]:
            return [{"pk": "airmiles-token", "ciphertext": Binary(token.encode() + b"\xff")}]

    found = leaks.findings("TokenTable", OneItem().table_text("TokenTable"))
    assert found == ["TokenTable: an AIR MILES access token"]
