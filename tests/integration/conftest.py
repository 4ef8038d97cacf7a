from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from local.sandbox import AUDIENCE, CLIENT_ID, CLIENT_SECRET, TOKEN_PATH
from offer_state.client import OfferStateClient
from offer_state.config import ClientCredentials, ClientSettings
from tests.support.sandbox_control import SandboxControl

# Short timeouts and budget keep fault tests fast; the ratios match production defaults.
FAST = {
    "connect_timeout": 0.5,
    "read_timeout": 0.5,
    "total_budget": 2.0,
    "backoff_factor": 0.01,
    "backoff_jitter": 0.01,
    "token_margin": 1.0,
    "origin_client": "external:test-partner:web",
}


@pytest.fixture
def credentials() -> ClientCredentials:
    secret = SecretStr(CLIENT_SECRET)
    return ClientCredentials(client_id=CLIENT_ID, client_secret=secret, audience=AUDIENCE)


@pytest.fixture
def settings(sandbox_control: SandboxControl) -> ClientSettings:
    return ClientSettings.for_environment(
        sandbox_control.url, token_url=sandbox_control.url + TOKEN_PATH, **FAST
    )


@pytest.fixture
def client(settings: ClientSettings, credentials: ClientCredentials) -> Iterator[OfferStateClient]:
    with OfferStateClient(settings, credentials) as offer_state:
        yield offer_state
