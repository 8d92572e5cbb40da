"""The vision judge's models and what a call to one costs, from ``data/models.toml``.

A judge is a text-out model, priced like Google bills it: prompt tokens (the prompt text, the
response schema and every image at ``input_image_tokens``) at the input rate, the answer and
its thinking at the output rate. ``max_output_tokens`` bounds an answer (thinking included), so
the worst case of one call is known before it is sent and the run's budget can reserve it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bananaflow.errors import ConfigurationError
from bananaflow.providers.base import Usage
from bananaflow.providers.models import MODELS_FILE_ENV, model_table

__all__ = [
    "SCHEMA_AND_OVERHEAD_TOKENS", "JudgeModelSpec", "default_judge_model_id", "estimate_text_tokens",
    "get_judge_model", "known_judge_models",
]

#: Input tokens a call spends beyond the prompt text and the images: the response schema, the
#: labels between images, the system instruction's framing (measured ~350; rounded up).
SCHEMA_AND_OVERHEAD_TOKENS = 600


def estimate_text_tokens(text: str) -> int:
    """An upper estimate of a text's tokens: one per three UTF-8 bytes (English runs ~4
    characters a token; other scripts more per byte), never under-counting a budget."""
    return math.ceil(len(text.encode("utf-8")) / 3)


@dataclass(frozen=True)
class JudgeModelSpec:
    """Prices and limits of one judge model id."""

    id: str
    nickname: str
    input_usd_per_million: float
    output_usd_per_million: float
    input_image_tokens: int
    max_output_tokens: int
    max_images: int = 8
    thinking_level: str | None = None
    thinking_budget: int | None = None

    def cost(self, *, prompt_tokens: int, output_tokens: int) -> float:
        """USD for a call that used these tokens (thinking counted in ``output_tokens``)."""
        usd = (prompt_tokens * self.input_usd_per_million + output_tokens * self.output_usd_per_million) / 1_000_000
        return round(usd, 8)

    def cost_of_usage(self, usage: Usage) -> float:
        """USD for an answer's reported usage. When the answer reports none, nothing is known
        and the caller should charge ``worst_case`` instead (never under-count a budget)."""
        return self.cost(prompt_tokens=usage.prompt_tokens, output_tokens=usage.candidates_tokens + usage.thoughts_tokens)

    def worst_case(self, *, text: str, images: int) -> float:
        """The most one call can cost: the prompt's estimated tokens, every image, and an answer
        of ``max_output_tokens``."""
        prompt = estimate_text_tokens(text) + SCHEMA_AND_OVERHEAD_TOKENS + images * self.input_image_tokens
        return self.cost(prompt_tokens=prompt, output_tokens=self.max_output_tokens)


def _table() -> Mapping[str, Any]:
    table = model_table().get("judge_models")
    return table if isinstance(table, Mapping) else {}


def known_judge_models() -> list[str]:
    return sorted(_table())


def default_judge_model_id() -> str:
    """``[defaults] judge_model`` in models.toml (a current Gemini Flash model)."""
    return str(model_table()["defaults"]["judge_model"])


def get_judge_model(model_id: str | None = None) -> JudgeModelSpec:
    """The spec of ``model_id`` (the default judge when None); an unknown id is one line naming
    the known ones and the ways out."""
    model_id = model_id or default_judge_model_id()
    entry = _table().get(model_id)
    if not isinstance(entry, Mapping):
        raise ConfigurationError(
            f"unknown judge model {model_id!r} (--qa-model); known: {', '.join(known_judge_models()) or 'none'} "
            f"(add others under [judge_models] in a TOML file named by {MODELS_FILE_ENV}, or run with --qa off)"
        )
    try:
        return JudgeModelSpec(
            id=model_id,
            nickname=str(entry.get("nickname", model_id)),
            input_usd_per_million=float(entry["input_usd_per_million"]),
            output_usd_per_million=float(entry["output_usd_per_million"]),
            input_image_tokens=int(entry["input_image_tokens"]),
            max_output_tokens=int(entry["max_output_tokens"]),
            max_images=int(entry.get("max_images", 8)),
            thinking_level=str(entry["thinking_level"]) if entry.get("thinking_level") else None,
            thinking_budget=int(entry["thinking_budget"]) if entry.get("thinking_budget") is not None else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"judge model {model_id!r} in models.toml lacks or mistypes {exc}; it needs input_usd_per_million, "
            "output_usd_per_million, input_image_tokens and max_output_tokens"
        ) from None
