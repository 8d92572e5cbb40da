"""Token counts for an answer, computed the way Google bills them.

The client bills from ``usageMetadata`` (image tokens at the image rate, other output at
the text rate, prompt and reference images at the input rate), so the numbers must
follow the model table rather than be arbitrary: image tokens come from
``bananaflow.providers.models`` for the size served, each reference image costs the model's
``input_image_tokens``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from bananaflow.testing.simulator.calls import ImageCall

THOUGHT_IMAGE_TOKENS = 258  # a small draft image, counted as thinking


def text_tokens(text: str) -> int:
    """About four characters per token, at least one for non-empty text."""
    return math.ceil(len(text) / 4) if text else 0


@dataclass(frozen=True)
class TokenUsage:
    prompt_text: int
    prompt_images: int
    image: int
    text: int
    thoughts: int

    @property
    def prompt(self) -> int:
        return self.prompt_text + self.prompt_images

    @property
    def candidates(self) -> int:
        return self.image + self.text

    @property
    def total(self) -> int:
        return self.prompt + self.candidates + self.thoughts


def usage_for(
    call: ImageCall, *, image: bool, text: str = "", thought_text: str = "", thought_images: int = 0
) -> TokenUsage:
    """Usage of one answer to ``call``: ``image`` says a final image was generated."""
    return TokenUsage(
        prompt_text=max(1, text_tokens(call.prompt)),
        prompt_images=call.reference_images * call.model.input_image_tokens,
        image=int(call.model.image_tokens[call.image_size]) if image else 0,
        text=text_tokens(text),
        thoughts=text_tokens(thought_text) + THOUGHT_IMAGE_TOKENS * thought_images,
    )
