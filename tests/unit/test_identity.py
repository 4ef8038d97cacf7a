from __future__ import annotations

import pytest

from offer_state.errors import CollectorAmbiguousError, ForbiddenError, ValidationError
from offer_state.identity import mask_collector_number, resolve_identity

CLAIM = "collector_number"
MACHINE_CLIENTS = frozenset({"partner-backend", "partner-batch"})


def jwt(scopes: list[str], **claims: str) -> dict:
    return {"claims": {"sub": "who", **claims}, "scopes": scopes}


def machine_jwt(scopes: list[str], client: str = "partner-backend", **claims: str) -> dict:
    return jwt(scopes, client_id=client, **claims)


def resolve(token: dict, header: str | None = None, scope: str = "offers/state.read"):
    return resolve_identity(
        token,
        header,
        collector_claim=CLAIM,
        required_scope=scope,
        machine_client_ids=MACHINE_CLIENTS,
    )


def test_member_claim_names_the_collector():
    identity = resolve(jwt(["offers/state.read"], collector_number="80000000110"))
    assert (identity.collector_number, identity.kind, identity.principal) == (
        "80000000110",
        "member",
        "who",
    )
    assert "80000000110" not in repr(identity)


def test_machine_token_names_it_in_the_header():
    identity = resolve(machine_jwt(["offers/state.read", "offers/state.m2m"]), "80000000001")
    assert (identity.collector_number, identity.kind) == ("80000000001", "m2m")


def test_scopes_may_come_from_the_scope_claim():
    token = {
        "claims": {"scope": "offers/state.read offers/state.m2m", "client_id": "partner-batch"},
        "scopes": None,
    }
    assert resolve(token, "80000000001").kind == "m2m"


@pytest.mark.parametrize("claim", ["client_id", "azp"])
def test_an_allowed_machine_client_is_named_by_client_id_or_azp(claim: str):
    token = jwt(["offers/state.read", "offers/state.m2m"], **{claim: "partner-batch"})
    assert resolve(token, "80000000001").kind == "m2m"


@pytest.mark.parametrize(
    "token",
    [
        machine_jwt(["offers/state.read", "offers/state.m2m"], client="someone-else"),
        jwt(["offers/state.read", "offers/state.m2m"], azp="someone-else"),
        jwt(["offers/state.read", "offers/state.m2m"]),  # names no client at all
    ],
)
def test_any_other_machine_client_may_not_name_a_collector(token: dict):
    with pytest.raises(ForbiddenError, match="machine client"):
        resolve(token, "80000000001")


def test_no_machine_client_may_name_a_collector_when_none_is_allowed():
    token = machine_jwt(["offers/state.read", "offers/state.m2m"])
    with pytest.raises(ForbiddenError):
        resolve_identity(
            token,
            "80000000001",
            collector_claim=CLAIM,
            required_scope="offers/state.read",
            machine_client_ids=frozenset(),
        )


def test_a_member_token_needs_no_machine_client():
    token = jwt(["offers/state.read", "offers/state.m2m"], collector_number="80000000110")
    identity = resolve_identity(
        token,
        None,
        collector_claim=CLAIM,
        required_scope="offers/state.read",
        machine_client_ids=frozenset(),
    )
    assert (identity.collector_number, identity.kind) == ("80000000110", "member")


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
            machine_jwt(["offers/state.read", "offers/state.m2m"]),
            None,
            "offers/state.read",
            ValidationError,
        ),
        (
            machine_jwt(["offers/state.read", "offers/state.m2m"]),
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
