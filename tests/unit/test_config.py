from __future__ import annotations

import pytest
from pydantic import ValidationError

from offer_state.config import ClientCredentials, ClientSettings, GatewaySettings


def test_uat_and_prod_have_their_base_and_token_urls():
    uat = ClientSettings.for_environment("uat")
    prod = ClientSettings.for_environment("prod")
    assert uat.base_url == "https://uat.airmilesapis.ca"
    assert uat.token_url == "https://oauth-cert.airmiles.ca/oauth/token"
    assert prod.base_url == "https://airmilesapis.ca"
    assert prod.token_url == "https://oauth.airmiles.ca/oauth/token"
    assert uat.put_path == "/offers/state-writer/v1/put"


def test_any_https_url_is_an_environment_without_its_trailing_slash():
    settings = ClientSettings.for_environment(
        "https://cert.airmilesapis.ca/", token_url="https://t/x"
    )
    assert settings.base_url == "https://cert.airmilesapis.ca"


@pytest.mark.parametrize(
    ("url", "token_url"),
    [
        ("http://uat.airmilesapis.ca", "https://t"),
        ("https://x", "http://10.0.0.1/t"),
        ("ftp://x", "https://t"),
    ],
)
def test_plain_http_only_to_loopback(url, token_url):
    with pytest.raises(ValidationError):
        ClientSettings.for_environment(url, token_url=token_url)


def test_from_env_reads_every_setting():
    settings = ClientSettings.from_env(
        {
            "AIRMILES_ENV": "http://127.0.0.1:3001",
            "AIRMILES_TOKEN_URL": "http://127.0.0.1:3001/oauth/token",
            "AIRMILES_ORIGIN_CLIENT": "external:acme:app",
            "AIRMILES_READ_TIMEOUT": "1.5",
            "AIRMILES_TOTAL_BUDGET": "4",
            "AIRMILES_MAX_RETRIES": "1",
            "AIRMILES_PUT_PATH": "/offers/state-reader/v1/put",
            "AIRMILES_CONNECT_TIMEOUT": "",
        }
    )
    assert settings.base_url == "http://127.0.0.1:3001"
    assert settings.origin_client == "external:acme:app"
    assert (settings.read_timeout, settings.total_budget, settings.max_retries) == (1.5, 4, 1)
    assert settings.connect_timeout == 2.0
    assert settings.put_path == "/offers/state-reader/v1/put"


def test_from_env_defaults_to_uat():
    assert ClientSettings.from_env({}).base_url == "https://uat.airmilesapis.ca"


@pytest.mark.parametrize(
    "overrides",
    [
        {"total_budget": 30},
        {"max_retries": -1},
        {"read_timeout": 0},
        {"put_path": "no-slash"},
        {"connect_timeout": 9, "total_budget": 8},
        {"unknown": 1},
    ],
)
def test_bad_settings_are_refused(overrides):
    with pytest.raises(ValidationError):
        ClientSettings.for_environment("uat", **overrides)


def test_credentials_never_show_the_secret():
    secret = {"client_id": "id", "client_secret": "s3cr3t-value", "audience": "aud"}
    creds = ClientCredentials.model_validate(secret)
    assert "s3cr3t-value" not in repr(creds) and "s3cr3t-value" not in str(creds)
    with pytest.raises(ValidationError):
        ClientCredentials.model_validate({**secret, "client_secret": ""})


def test_gateway_settings_read_the_lists_the_template_joins_with_commas():
    env = {"SECRET_ID": "s", "AUDIT_TABLE_NAME": "a", "PSEUDONYM_KEY_ID": "arn:key/new"}
    settings = GatewaySettings.from_env(
        {**env, "MACHINE_CLIENT_IDS": "app-a, app-b", "RETIRED_PSEUDONYM_KEY_IDS": "arn:key/old"}
    )
    assert settings.machine_client_ids == {"app-a", "app-b"}
    assert settings.retired_pseudonym_key_ids == ("arn:key/old",)
    blank = GatewaySettings.from_env({**env, "MACHINE_CLIENT_IDS": ""})
    assert (blank.machine_client_ids, blank.retired_pseudonym_key_ids) == (frozenset(), ())


def test_gateway_settings_need_the_pseudonym_key():
    with pytest.raises(ValidationError, match="pseudonym_key_id"):
        GatewaySettings.from_env({"SECRET_ID": "s", "AUDIT_TABLE_NAME": "a"})
