"""Who a call to AIR MILES is made for, and with which token: `Collector(number)`, on behalf
of a collector with the partner's machine token (the `Collector-Number` header names the
collector), or `MemberToken(token)`, with the member's own bearer token (no `Collector-Number`
is ever sent). Light on purpose: importing it imports no HTTP library."""

from __future__ import annotations

from dataclasses import dataclass, field

from offer_state.errors import ValidationError
from offer_state.identity import is_collector_number, mask_collector_number


@dataclass(frozen=True)
class Collector:
    """Call on behalf of this collector with the partner's machine-to-machine token."""

    number: str = field(repr=False)

    def __post_init__(self) -> None:
        if not is_collector_number(self.number):
            raise ValidationError("A collector number is 11 digits.")

    def __repr__(self) -> str:
        return f"Collector({mask_collector_number(self.number)})"


@dataclass(frozen=True)
class MemberToken:
    """Call with the member's own AIR MILES bearer token (the collector is in the token)."""

    access_token: str = field(repr=False)


Caller = Collector | MemberToken
