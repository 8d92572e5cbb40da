"""Image providers: one HTTP call in, one verified image (or classified error) out.

``make_provider`` is the only constructor the pipeline should need; the concrete classes
are exported for tests and for callers that want a specific wire format. The modules named in
``__all__`` are imported by name from other packages too (``settings``, ``models``, ``classify``
...); ``_http``, the one place a request is sent, is shared with ``bananaflow.batch`` only.
"""
from __future__ import annotations

import httpx

from bananaflow.providers.base import GeneratedImage, ImageProvider, ImageRequest, ReferenceImage, Usage
from bananaflow.providers.gemini import GeminiProvider
from bananaflow.providers.openai_images import OpenAIImagesProvider
from bananaflow.providers.settings import ProviderSettings

__all__ = [
    "GeminiProvider",
    "GeneratedImage",
    "ImageProvider",
    "ImageRequest",
    "OpenAIImagesProvider",
    "ProviderSettings",
    "ReferenceImage",
    "Usage",
    "make_provider",
    # modules
    "base", "classify", "diagnose", "gcp_auth", "gemini", "imaging", "models", "network_backend",
    "openai_images", "quota_day", "settings", "vertex", "vertex_settings",
]


def make_provider(settings: ProviderSettings, client: httpx.AsyncClient | None = None) -> ImageProvider:
    """The provider for ``settings.kind``. Pass ``client`` to share a connection pool (or a
    ``MockTransport`` in tests); a provider closes only clients it created itself."""
    if settings.kind == "gemini":
        return GeminiProvider(settings, client)
    if settings.kind == "vertex":
        from bananaflow.providers.vertex import VertexProvider

        return VertexProvider(settings, client)
    return OpenAIImagesProvider(settings, client)
