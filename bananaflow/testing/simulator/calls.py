"""The wire-neutral form of one image request, and the refusal raised while reading it.

Both routes (native and OpenAI-compatible) parse their own JSON into an ``ImageCall`` so
quotas, faults, latency and images are handled once for both.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bananaflow.providers.models import ModelSpec


@dataclass(frozen=True)
class ImageCall:
    """A validated request: the model accepts this ratio and size."""

    model: ModelSpec
    prompt: str
    aspect_ratio: str
    image_size: str
    reference_images: int = 0
    wants_image: bool = True  # False when the caller asked for text modalities only

    @property
    def pixels(self) -> tuple[int, int]:
        """The exact width and height the real model returns for this call."""
        return self.model.expected_pixels(self.aspect_ratio, self.image_size)

    @property
    def prompt_digest(self) -> bytes:
        return hashlib.sha256(self.prompt.encode("utf-8")).digest()


class WireError(Exception):
    """The request is refused before any work: 400 (malformed or not accepted) or 404
    (unknown model). ``field`` names the offending field in the route's own convention."""

    def __init__(self, http_status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.field = field
