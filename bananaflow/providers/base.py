"""The one shape every image provider speaks, whatever its wire format.

A provider turns an ``ImageRequest`` into a ``GeneratedImage`` with exactly one HTTP call
(plus, for URL responses, one download) and raises a classified ``ProviderError`` otherwise.
Retrying, rate control and storage are deliberately *not* here: they wrap any provider.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ReferenceImage:
    """A photo of the real product sent with the prompt (edit mode)."""

    data: bytes = field(repr=False)
    mime_type: str = "image/jpeg"


@dataclass(frozen=True)
class ImageRequest:
    """One image to generate. ``model``, ``aspect_ratio`` and ``image_size`` are validated
    against ``bananaflow.providers.models`` before any call."""

    prompt: str
    model: str
    aspect_ratio: str = "1:1"
    image_size: str = "1K"
    reference_images: tuple[ReferenceImage, ...] = ()


@dataclass(frozen=True)
class Usage:
    """Token counts from ``usageMetadata`` (zeros when the provider reports none)."""

    prompt_tokens: int = 0
    candidates_tokens: int = 0
    thoughts_tokens: int = 0
    image_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True)
class GeneratedImage:
    """A verified image: the bytes decode, and ``width``/``height`` are what they decode to."""

    data: bytes = field(repr=False)
    mime_type: str
    width: int
    height: int
    model: str
    usage: Usage
    cost_usd: float
    finish_reason: str | None = None
    response_id: str | None = None


@runtime_checkable
class ImageProvider(Protocol):
    """What the pipeline needs from a provider. Implementations hold an ``httpx.AsyncClient``."""

    name: str
    base_url: str

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        """One attempt. Raises a ``bananaflow.errors.ProviderError`` subclass on failure."""
        ...

    async def aclose(self) -> None:
        ...
