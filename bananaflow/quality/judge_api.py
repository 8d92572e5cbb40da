"""The seam between the gate and the vision judge: what the judge is shown and what it answers.

The gate builds a ``JudgeInput`` from the item (the image as it will be published, the
reference photos, the catalog's product facts, what the variant asked for, the preset's rules)
and a ``Judge`` returns a ``JudgeAnswer`` from ONE HTTP call, or raises:

* a classified ``ProviderError`` of the taxonomy (``providers.classify``) when no usable HTTP
  answer came: transport errors, 429, 5xx, 4xx. ``quality`` sits below ``generation``, so it does
  not retry: the gate wraps the call in ``generation.retry`` and the judge model's own limits;
* ``JudgeUnavailable`` for a 200 it cannot use: invalid or truncated JSON, a reply that breaks
  the schema, a judge that is itself safety-blocked, ``MAX_TOKENS``. Its ``cause`` says which and
  its ``cost_usd`` what that answer was billed. Not worth an identical resend in the same breath;
  the gate keeps the image ``unchecked`` (fail closed).

``bananaflow.quality.build.build_judge`` makes the judge for a run's provider settings.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bananaflow.landing.outcome import Charge
from bananaflow.landing.verdict import Verdict
from bananaflow.providers.base import ReferenceImage

__all__ = ["Judge", "JudgeAnswer", "JudgeInput", "ProductFacts"]


@dataclass(frozen=True)
class ProductFacts:
    """What the catalog says about the product: given to the judge as quoted data, never as
    instructions. Empty strings are facts the catalog does not have."""

    sku: str
    title: str = ""
    colour: str = ""
    material: str = ""
    brand: str = ""
    label_text: str = ""
    other: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class JudgeInput:
    """One image to judge, with what a careful person would compare it against."""

    image: bytes = field(repr=False)
    mime_type: str
    facts: ProductFacts
    references: tuple[ReferenceImage, ...] = ()
    asked: str = ""  # what the variant asked for: background, framing, scene (the prompt)
    preset_rules: str = ""  # the marketplace preset's rules in one line


@dataclass(frozen=True)
class JudgeAnswer:
    verdict: Verdict
    charge: Charge  # purpose "judge"; cost from the judge model's token prices


class Judge(Protocol):
    """A vision judge on one route (AI Studio, Vertex AI, an OpenAI-compatible relay)."""

    model: str

    def worst_case_cost(self, request: JudgeInput) -> float:
        """What one call may cost at most: reserved in the run's budget before it is sent."""
        ...

    async def judge(self, request: JudgeInput) -> JudgeAnswer:
        """One HTTP call: a validated verdict, a classified ``ProviderError`` (the caller
        retries under the taxonomy), or ``JudgeUnavailable`` for a 200 without a usable verdict
        (the caller keeps the image unchecked)."""
        ...

    async def aclose(self) -> None:
        """Close the HTTP client if the judge made it."""
        ...
