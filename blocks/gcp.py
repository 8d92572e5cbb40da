"""Vertex AI credentials from prefect-gcp's own ``GcpCredentials`` block.

A Prefect user who keeps a service account in a ``GcpCredentials`` block names it in
``blocks.gcp_credentials`` instead of entering it again: its ``service_account_info`` (or
the file its ``service_account_file`` names) becomes the Vertex route's credentials, its
``project`` the project when ``GOOGLE_CLOUD_PROJECT`` is not set; a block with neither uses
ADC, as prefect-gcp does. Location and endpoint still follow google-genai's variables.
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from bananaflow.errors import ConfigurationError
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import Secret, register_secret


def vertex_settings_from_block(name: str, model: str | None = None) -> ProviderSettings:
    """The Vertex route's settings with the credentials and project of ``GcpCredentials`` ``name``."""
    try:
        from prefect_gcp import GcpCredentials
    except ImportError:  # pragma: no cover - prefect-gcp is a dependency
        raise ConfigurationError("blocks.gcp_credentials needs the prefect-gcp package") from None
    block = GcpCredentials.load(name)
    environ = dict(os.environ)
    environ.setdefault("GOOGLE_GENAI_USE_VERTEXAI", "true")
    if block.project and not environ.get("GOOGLE_CLOUD_PROJECT"):
        environ["GOOGLE_CLOUD_PROJECT"] = block.project
    settings = ProviderSettings.from_env(environ, kind="vertex", model=model)
    info = block.service_account_info.get_secret_value() if block.service_account_info else None
    if info is None and block.service_account_file:
        try:
            info = json.loads(Path(block.service_account_file).expanduser().read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"GcpCredentials block {name!r}: cannot read service_account_file ({type(exc).__name__})"
            ) from None
    if info is None:
        return settings
    if isinstance(info, dict):
        register_secret(str(info.get("private_key") or ""))
    return replace(settings, gcp_credentials=Secret(json.dumps(dict(info))))
