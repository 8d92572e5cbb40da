"""Which image model to call, where, and with which key."""
from __future__ import annotations

from typing import Literal

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from bananaflow.models import default_model_id
from bananaflow.provider_settings import ProviderSettings
from bananaflow.secrets import Secret


class ImageProviderBlock(Block):
    """A Gemini endpoint (or an OpenAI-compatible relay of it) and its credentials."""

    _block_type_name = "Bananaflow Image Provider"
    _block_type_slug = "bananaflow-image-provider"
    _description = "Gemini native or OpenAI-compatible image endpoint, auth style, API key and model."

    kind: Literal["gemini", "openai"] = Field("gemini", description="Wire format: Gemini generateContent or OpenAI images.")
    base_url: str | None = Field(None, description="Endpoint base URL; empty for Google's default.")
    api_key: SecretStr | None = Field(None, description="API key (stored encrypted, shown masked).")
    auth_style: Literal["header", "bearer", "query"] | None = Field(
        None, description="x-goog-api-key header (Gemini default), Authorization Bearer (relays) or ?key=."
    )
    model: str = Field(default_factory=default_model_id, description="Model id, e.g. gemini-3-pro-image.")
    timeout_s: float = Field(180.0, description="Per-request timeout in seconds.")

    def to_settings(self) -> ProviderSettings:
        base = ProviderSettings.from_env(
            {
                **({"GEMINI_API_KEY": self.api_key.get_secret_value()} if self.api_key and self.kind == "gemini" else {}),
                **({"OPENAI_API_KEY": self.api_key.get_secret_value()} if self.api_key and self.kind == "openai" else {}),
                **({"GOOGLE_GEMINI_BASE_URL": self.base_url} if self.base_url and self.kind == "gemini" else {}),
                **({"OPENAI_BASE_URL": self.base_url} if self.base_url and self.kind == "openai" else {}),
                **({"BANANAFLOW_AUTH_STYLE": self.auth_style} if self.auth_style else {}),
            },
            kind=self.kind,
            model=self.model,
        )
        return base.with_timeout(self.timeout_s) if hasattr(base, "with_timeout") else base

    @classmethod
    def from_env(cls, model: str | None = None) -> "ImageProviderBlock":
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
