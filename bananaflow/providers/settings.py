"""Where and how to reach an image model: one immutable value built from the environment.

The variable names follow what the official SDKs already read, so a machine set up for
``google-genai`` or ``openai`` works unchanged:

* gemini: ``GOOGLE_API_KEY`` or ``GEMINI_API_KEY`` (google-genai prefers ``GOOGLE_API_KEY``
  when both are set; so do we), ``GOOGLE_GEMINI_BASE_URL``; the key goes in the
  ``x-goog-api-key`` header, which keeps it out of URLs and therefore out of logs.
* openai (OpenAI-compatible relays): ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``; bearer auth.
* vertex (Vertex AI, google-genai's names): ``GOOGLE_GENAI_USE_VERTEXAI=true``,
  ``GOOGLE_CLOUD_PROJECT``, ``GOOGLE_CLOUD_LOCATION`` (default ``global``), credentials from
  ADC (``GOOGLE_APPLICATION_CREDENTIALS`` or the metadata server), ``GOOGLE_VERTEX_BASE_URL``
  replacing the host root; see ``bananaflow.providers.vertex``.
* bananaflow's own: ``BANANAFLOW_PROVIDER`` (gemini|openai|vertex), ``BANANAFLOW_AUTH_STYLE``
  (header|bearer|query), ``BANANAFLOW_MODEL``, ``BANANAFLOW_TIMEOUT_S``,
  ``BANANAFLOW_VERIFY_SIZE`` (true|false).

The key is held as a ``Secret``: it is registered for redaction when read and prints as
``***`` in every repr.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal, cast

from bananaflow.errors import ConfigurationError
from bananaflow.secrets import Secret

ProviderKind = Literal["gemini", "openai", "vertex"]
AuthStyle = Literal["header", "bearer", "query"]

KINDS: tuple[str, ...] = ("gemini", "openai", "vertex")
#: Kinds that speak Google's generateContent body (AI Studio and Vertex AI).
GEMINI_WIRE_KINDS: tuple[str, ...] = ("gemini", "vertex")
AUTH_STYLES: tuple[str, ...] = ("header", "bearer", "query")
GEMINI_DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT_S = 180.0

_GEMINI_KEY_VARS = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
_OPENAI_KEY_VARS = ("OPENAI_API_KEY",)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class ProviderSettings:
    """Connection settings for one provider.

    ``verify_size`` None means "the kind's default": Gemini answers with exact pixel sizes
    so a mismatch is a bad response; relays often ignore the requested size, so for
    ``openai`` the real size is recorded instead of being enforced.
    """

    kind: ProviderKind
    base_url: str
    api_key: Secret | None
    auth_style: AuthStyle
    model: str
    timeout_s: float = DEFAULT_TIMEOUT_S
    verify_size: bool | None = None
    #: Vertex AI only: the Google Cloud project and location, and where ADC comes from
    #: (``None``: google-auth's usual chain; else a service-account JSON, held as a Secret).
    project: str | None = None
    location: str | None = None
    gcp_credentials: Secret | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigurationError(f"provider kind {self.kind!r} is unknown; allowed: {', '.join(KINDS)}")
        if self.auth_style not in AUTH_STYLES:
            raise ConfigurationError(
                f"auth style {self.auth_style!r} is unknown; allowed: {', '.join(AUTH_STYLES)}"
            )
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"base URL {self.base_url!r} must start with http:// or https://")
        if self.api_key is not None and not isinstance(self.api_key, Secret):
            raise ConfigurationError("api_key must be a bananaflow.secrets.Secret (so it never prints)")
        if self.timeout_s <= 0:
            raise ConfigurationError(f"timeout_s must be positive, got {self.timeout_s}")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    @property
    def should_verify_size(self) -> bool:
        """Whether a pixel size other than the model's expected one is a ``BadResponse``."""
        return self.kind in GEMINI_WIRE_KINDS if self.verify_size is None else self.verify_size

    def with_timeout(self, timeout_s: float) -> ProviderSettings:
        """A copy with another per-request timeout (settings are frozen so they can be shared)."""
        return replace(self, timeout_s=timeout_s)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] = os.environ,
        kind: str | None = None,
        model: str | None = None,
    ) -> ProviderSettings:
        """Read settings the way the official SDKs do (see the module docstring).

        The kind is, in order: the ``kind`` argument, ``BANANAFLOW_PROVIDER``, then
        whichever key is present (Gemini first). A missing key is a ``ConfigurationError``
        naming the variables to set, raised here rather than as a 401 on the first call.
        """
        env = {k: v.strip() for k, v in environ.items() if isinstance(v, str) and v.strip()}
        chosen = (kind or env.get("BANANAFLOW_PROVIDER") or _infer_kind(env)).lower()
        if chosen not in KINDS:
            raise ConfigurationError(
                f"BANANAFLOW_PROVIDER={chosen!r} is unknown; allowed: {', '.join(KINDS)}"
            )
        if chosen == "vertex":
            from bananaflow.providers.vertex_settings import vertex_fields_from_env

            return cls(**vertex_fields_from_env(env, model=model or env.get("BANANAFLOW_MODEL") or _default_model(),
                                                timeout_s=_float_env(env, "BANANAFLOW_TIMEOUT_S", DEFAULT_TIMEOUT_S),
                                                verify_size=_bool_env(env, "BANANAFLOW_VERIFY_SIZE")))
        key_vars = _GEMINI_KEY_VARS if chosen == "gemini" else _OPENAI_KEY_VARS
        key = next((env[v] for v in key_vars if v in env), None)
        if key is None:
            raise ConfigurationError(
                f"no API key for the {chosen} provider: set {' or '.join(key_vars)}"
            )
        if chosen == "gemini":
            base_url = env.get("GOOGLE_GEMINI_BASE_URL", GEMINI_DEFAULT_BASE_URL)
            default_auth = "header"
        else:
            base_url = env.get("OPENAI_BASE_URL", OPENAI_DEFAULT_BASE_URL)
            default_auth = "bearer"
        auth_style = env.get("BANANAFLOW_AUTH_STYLE", default_auth).lower()
        if auth_style not in AUTH_STYLES:
            raise ConfigurationError(
                f"BANANAFLOW_AUTH_STYLE={auth_style!r} is unknown; allowed: {', '.join(AUTH_STYLES)}"
            )
        return cls(
            kind=cast(ProviderKind, chosen),
            base_url=base_url,
            api_key=Secret(key),
            auth_style=cast(AuthStyle, auth_style),
            model=model or env.get("BANANAFLOW_MODEL") or _default_model(),
            timeout_s=_float_env(env, "BANANAFLOW_TIMEOUT_S", DEFAULT_TIMEOUT_S),
            verify_size=_bool_env(env, "BANANAFLOW_VERIFY_SIZE"),
        )


def _infer_kind(env: Mapping[str, str]) -> str:
    if env.get("GOOGLE_GENAI_USE_VERTEXAI", "").lower() in _TRUE:
        return "vertex"
    if any(v in env for v in _GEMINI_KEY_VARS):
        return "gemini"
    if any(v in env for v in _OPENAI_KEY_VARS):
        return "openai"
    return "gemini"


def _default_model() -> str:
    from bananaflow.providers.models import default_model_id

    return default_model_id()


def _float_env(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number of seconds") from None


def _bool_env(env: Mapping[str, str], name: str) -> bool | None:
    raw = env.get(name)
    if raw is None:
        return None
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ConfigurationError(f"{name}={raw!r} is not a boolean; use true or false")
