from __future__ import annotations

import pytest

from offer_state.errors import CollectorAmbiguousError, ForbiddenError, ValidationError
from offer_state.identity import mask_collector_number, resolve_identity

CLAIM = "collector_number"


def jwt(scopes: list[str], **claims: str) -> dict:
    return {"claims": {"sub": "who", **claims}, "scopes": scopes}


def resolve(token: dict, header: str | None = None, scope: str = "offers/state.read"):
    return resolve_identity(token, header, collector_claim=CLAIM, required_scope=scope)


def test_member_claim_names_the_collector():
    identity = resolve(jwt(["offers/state.read"], collector_number="80000000110"))
    assert (identity.collector_number, identity.kind, identity.principal) == (
        "80000000110",
        "member",
        "who",
    )
    assert "80000000110" not in repr(identity)


def test_machine_token_names_it_in_the_header():
    identity = resolve(jwt(["offers/state.read", "offers/state.m2m"]), "80000000001")
    assert (identity.collector_number, identity.kind) == ("80000000001", "m2m")


def test_scopes_may_come_from_the_scope_claim():
    token = {"claims": {"scope": "offers/state.read offers/state.m2m"}, "scopes": None}
    assert resolve(token, "80000000001").kind == "m2m"


@pytest.mark.parametrize(
    ("token", "header", "scope", "error"),
    [
        (
            jwt(["offers/state.read"], collector_number="80000000110"),
            "80000000110",
            "offers/state.read",
            CollectorAmbiguousError,
        ),
        (
            jwt(["offers/state.read", "offers/state.m2m"]),
            None,
            "offers/state.read",
            ValidationError,
        ),
        (
            jwt(["offers/state.read", "offers/state.m2m"]),
            "123",
            "offers/state.read",
            ValidationError,
        ),
        (jwt(["offers/state.read"]), "80000000110", "offers/state.read", ForbiddenError),
        (jwt(["offers/state.read"]), None, "offers/state.read", ForbiddenError),
        (
            jwt(["offers/state.read"], collector_number="80000000110"),
            None,
            "offers/state.write",
            ForbiddenError,
        ),
        (
            jwt(["offers/state.read"], collector_number="not-a-number"),
            None,
            "offers/state.read",
            ForbiddenError,
        ),
        (None, None, "offers/state.read", ForbiddenError),
    ],
)
def test_every_other_mix_is_refused(token, header, scope, error):
    with pytest.raises(error):
        resolve(token, header, scope)


def test_masking_keeps_the_last_four_digits():
    assert mask_collector_number("80000000110") == "*******0110"
