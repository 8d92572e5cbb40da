"""Which image model to call, where, and with which key."""
from __future__ import annotations

from dataclasses import replace
from typing import Literal

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from bananaflow.providers.models import default_model_id
from bananaflow.providers.settings import GEMINI_DEFAULT_BASE_URL, OPENAI_DEFAULT_BASE_URL, ProviderSettings
from bananaflow.secrets import Secret


class ImageProviderBlock(Block):
    """A Gemini endpoint (or an OpenAI-compatible relay of it) and its credentials."""

    _block_type_name = "Bananaflow Image Provider"
    _block_type_slug = "bananaflow-image-provider"
    _description = "Gemini native or OpenAI-compatible image endpoint, auth style, API key and model."

    kind: Literal["gemini", "openai", "vertex"] = Field(
        "gemini", description="Gemini generateContent (AI Studio), OpenAI images (relays), or Vertex AI (ADC, no key)."
    )
    base_url: str | None = Field(None, description="Endpoint base URL; empty for Google's default.")
    api_key: SecretStr | None = Field(None, description="API key (stored encrypted, shown masked).")
    auth_style: Literal["header", "bearer", "query"] | None = Field(
        None, description="x-goog-api-key header (Gemini default), Authorization Bearer (relays) or ?key=."
    )
    model: str = Field(default_factory=default_model_id, description="Model id, e.g. gemini-3-pro-image.")
    timeout_s: float = Field(180.0, description="Per-request timeout in seconds.")
    fallback_models: list[str] = Field(
        default_factory=list,
        description="Models to fall back to, in order, when the main one is overloaded, failing or out of quota.",
    )

    qa: Literal["on", "off"] | None = Field(
        None, description="Quality gate: check every image before publishing (free checks, then a vision judge); "
        "empty: on. A run's --qa and the job spec's qa section win."
    )
    qa_model: str | None = Field(None, description="The vision judge's model; empty: models.toml's default judge.")
    qa_max_attempts: int | None = Field(
        None, ge=0, le=5, description="Regenerations of an image that failed its checks; empty: 2."
    )

    def quality_defaults(self) -> dict[str, object]:
        """The quality gate's fields this block sets (``bananaflow.planning.quality``)."""
        values = {"qa": self.qa, "qa_model": self.qa_model, "qa_max_attempts": self.qa_max_attempts}
        return {k: v for k, v in values.items() if v is not None}

    def to_settings(self) -> ProviderSettings:
        """Engine settings; a field left empty falls back to the environment, then defaults."""
        if self.kind == "vertex":  # project, location and credentials follow google-genai's variables
            vertex = ProviderSettings.from_env(kind="vertex", model=self.model)
            return replace(vertex, base_url=self.base_url or vertex.base_url, model=self.model, timeout_s=self.timeout_s)
        if self.api_key is None or not self.api_key.get_secret_value():  # the key (and its endpoint) from the environment
            env = ProviderSettings.from_env(kind=self.kind, model=self.model)
            base_url, api_key, auth_style = env.base_url, env.api_key, env.auth_style
        else:
            base_url = GEMINI_DEFAULT_BASE_URL if self.kind == "gemini" else OPENAI_DEFAULT_BASE_URL
            api_key = Secret(self.api_key.get_secret_value())
            auth_style = "header" if self.kind == "gemini" else "bearer"
        return ProviderSettings(
            kind=self.kind,
            base_url=self.base_url or base_url,
            api_key=api_key,
            auth_style=self.auth_style or auth_style,
            model=self.model,
            timeout_s=self.timeout_s,
        )

    @classmethod
    def from_env(cls, model: str | None = None) -> ImageProviderBlock:
        """The block a user would fill in by hand, taken from the usual environment variables."""
        settings = ProviderSettings.from_env(model=model)
        key = settings.api_key.reveal() if isinstance(settings.api_key, Secret) else None
        return cls(
            kind=settings.kind,
            base_url=settings.base_url,
            api_key=SecretStr(key) if key else None,
            auth_style=settings.auth_style,
            model=settings.model,
            timeout_s=settings.timeout_s,
        )
