"""Who may touch which collector (docs/partner-api.md, "Identity").

API Gateway's JWT authorizer has already checked the token's signature, issuer, audience,
expiry and route scope; here we only decide which collector the call is about:
- a member token names its collector in a claim, and nowhere else may name one;
- a machine token (scope `offers/state.m2m`) of an allowed machine client (its `client_id`
  or `azp` claim is in `MACHINE_CLIENT_IDS`) names it in the `Collector-Number` header;
- any other token may not name a collector at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from offer_state import upstream
from offer_state.errors import (
    CollectorAmbiguousError,
    ForbiddenError,
    ValidationError,
)

READ_SCOPE = "offers/state.read"
WRITE_SCOPE = "offers/state.write"
M2M_SCOPE = "offers/state.m2m"
_COLLECTOR_NUMBER = re.compile(upstream.COLLECTOR_NUMBER_PATTERN)


@dataclass(frozen=True)
class Identity:
    """The collector a call is about, and who is asking."""

    collector_number: str = field(repr=False)
    kind: Literal["member", "m2m"]
    principal: str | None  # the token's `sub`

    @property
    def masked_number(self) -> str:
        return mask_collector_number(self.collector_number)


def is_collector_number(value: object) -> bool:
    return isinstance(value, str) and _COLLECTOR_NUMBER.fullmatch(value) is not None


def mask_collector_number(number: str) -> str:
    """`80000000110` -> `*******0110`: enough for support to recognise, useless to misuse."""
    return "*" * (len(number) - 4) + number[-4:]


def scopes_of(jwt: Mapping[str, Any]) -> set[str]:
    """The token's scopes as API Gateway passes them (a list), or from a `scope` claim."""
    scopes = jwt.get("scopes")
    if scopes:
        return set(scopes)
    claim = (jwt.get("claims") or {}).get("scope") or ""
    return set(str(claim).split())


def machine_client(claims: Mapping[str, Any]) -> str | None:
    """The client a machine token was issued to: its `client_id` claim (Cognito, Okta's
    OAuth access tokens ...) or else its `azp` (OpenID Connect's authorized party, Auth0)."""
    client = claims.get("client_id") or claims.get("azp")
    return str(client) if client else None


def require_scope(jwt: Mapping[str, Any], scope: str) -> None:
    if scope not in scopes_of(jwt):
        raise ForbiddenError(f"The token lacks the scope {scope}.")


def _member(number: str, collector_header: str | None, principal: str | None) -> Identity:
    """A member's token: the collector is the token's, and no header may name another."""
    if collector_header is not None:
        raise CollectorAmbiguousError()
    if not is_collector_number(number):
        raise ForbiddenError("The token's collector claim is not a collector number.")
    return Identity(number, "member", principal)


def _named_by_machine(collector_header: str | None, principal: str | None) -> Identity:
    """An allowed machine client's token: the collector is the one its header names."""
    if collector_header is None or collector_header == "":
        raise ValidationError(
            "A machine token must name the collector in the Collector-Number header.",
            details=[{"field": "Collector-Number", "message": "Field required"}],
        )
    if not is_collector_number(collector_header):
        raise ValidationError(
            "Collector-Number must be 11 digits.",
            details=[{"field": "Collector-Number", "message": "must be 11 digits"}],
        )
    return Identity(collector_header, "m2m", principal)


def resolve_identity(
    jwt: Mapping[str, Any] | None,
    collector_header: str | None,
    *,
    collector_claim: str,
    required_scope: str,
    machine_client_ids: frozenset[str],
) -> Identity:
    """The collector this request may touch, or the error docs/partner-api.md prescribes."""
    jwt = jwt or {}
    claims = jwt.get("claims") or {}
    require_scope(jwt, required_scope)
    principal = claims.get("sub")
    member_number = claims.get(collector_claim)
    if member_number not in (None, ""):
        return _member(str(member_number), collector_header, principal)
    if M2M_SCOPE in scopes_of(jwt):
        if machine_client(claims) not in machine_client_ids:
            raise ForbiddenError("This machine client may not name a collector.")
        return _named_by_machine(collector_header, principal)
    if collector_header is not None:
        raise ForbiddenError(f"Only a token with the scope {M2M_SCOPE} may send Collector-Number.")
    raise ForbiddenError("The token names no collector.")
