"""ProviderSettings.from_env follows the SDKs' variable names and never prints the key."""
from __future__ import annotations

import pytest

from bananaflow.errors import ConfigurationError
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import Secret

GKEY = "FAKESettingsKey1111111111111111111"
OKEY = "sk-settings-key-2222222222222222"


def test_gemini_defaults() -> None:
    s = ProviderSettings.from_env({"GEMINI_API_KEY": GKEY})
    assert (s.kind, s.base_url, s.auth_style, s.timeout_s) == (
        "gemini", "https://generativelanguage.googleapis.com", "header", 180.0
    )
    assert s.api_key == Secret(GKEY) and s.model == "gemini-3-pro-image" and s.should_verify_size
    assert GKEY not in repr(s) and GKEY not in str(s)


def test_google_api_key_and_base_url_override() -> None:
    env = {"GOOGLE_API_KEY": GKEY, "GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:8080/", "BANANAFLOW_AUTH_STYLE": "query"}
    s = ProviderSettings.from_env(env, model="gemini-3.1-flash-image")
    assert (s.base_url, s.auth_style, s.model) == ("http://127.0.0.1:8080", "query", "gemini-3.1-flash-image")
    assert s.api_key is not None and s.api_key.reveal() == GKEY


def test_openai_relay() -> None:
    env = {"OPENAI_API_KEY": OKEY, "OPENAI_BASE_URL": "https://relay.test/v1", "BANANAFLOW_VERIFY_SIZE": "yes"}
    s = ProviderSettings.from_env(env)
    assert (s.kind, s.auth_style, s.base_url, s.should_verify_size) == ("openai", "bearer", "https://relay.test/v1", True)
    assert not ProviderSettings.from_env({"OPENAI_API_KEY": OKEY}).should_verify_size


def test_explicit_kind_wins() -> None:
    env = {"GEMINI_API_KEY": GKEY, "OPENAI_API_KEY": OKEY, "BANANAFLOW_PROVIDER": "openai"}
    assert ProviderSettings.from_env(env).kind == "openai"
    assert ProviderSettings.from_env(env, kind="gemini").kind == "gemini"


@pytest.mark.parametrize(
    ("env", "kind", "names"),
    [
        ({}, None, ["GOOGLE_API_KEY", "GEMINI_API_KEY"]),
        ({"GEMINI_API_KEY": "  "}, None, ["GEMINI_API_KEY"]),
        ({"GEMINI_API_KEY": GKEY}, "openai", ["OPENAI_API_KEY"]),
    ],
)
def test_missing_key_names_variables(env: dict, kind: str | None, names: list[str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        ProviderSettings.from_env(env, kind=kind)
    assert all(n in str(info.value) for n in names)


@pytest.mark.parametrize(
    "env",
    [
        {"GEMINI_API_KEY": GKEY, "BANANAFLOW_PROVIDER": "vertex"},
        {"GEMINI_API_KEY": GKEY, "BANANAFLOW_AUTH_STYLE": "cookie"},
        {"GEMINI_API_KEY": GKEY, "BANANAFLOW_TIMEOUT_S": "soon"},
        {"GEMINI_API_KEY": GKEY, "GOOGLE_GEMINI_BASE_URL": "ftp://x"},
    ],
)
def test_bad_values_are_configuration_errors(env: dict) -> None:
    with pytest.raises(ConfigurationError):
        ProviderSettings.from_env(env)


def test_plain_string_key_refused() -> None:
    with pytest.raises(ConfigurationError, match="Secret"):
        ProviderSettings("gemini", "https://x", GKEY, "header", "m")  # type: ignore[arg-type]


def test_with_timeout_copies() -> None:
    s = ProviderSettings.from_env({"GEMINI_API_KEY": GKEY})
    t = s.with_timeout(30)
    assert (s.timeout_s, t.timeout_s, t.api_key) == (180.0, 30, s.api_key)
