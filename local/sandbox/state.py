"""Everything the sandbox knows, in one object the endpoints depend on: its signing key and
tokens, the offer store, its config, the faults, the call log."""

from __future__ import annotations

import threading

from local.sandbox.calls import CallLog
from local.sandbox.config import SandboxConfig, default_token_ttl
from local.sandbox.faults import FaultRegistry
from local.sandbox.store import OfferStore
from local.sandbox.tokens import TokenAuthority


class SandboxState:
    """The sandbox's state; `stopping` is set while the sandbox stops, so delayed and held
    calls end at once."""

    def __init__(self, token_ttl: int | None = None) -> None:
        self.tokens = TokenAuthority()
        self.store = OfferStore()
        self.config = SandboxConfig(default_token_ttl(token_ttl))
        self.faults = FaultRegistry()
        self.calls = CallLog()
        self.stopping = threading.Event()

    def reset(self) -> None:
        """Seed, config defaults, no faults, no counts, empty log; the signing key stays."""
        self.store.reset()
        self.config.reset()
        self.faults.clear()
        self.calls.reset()
