"""The seam between the gate and the vision judge: what the judge is shown and what it answers.

The gate builds a ``JudgeInput`` from the item (the image as it will be published, the
reference photos, the catalog's product facts, what the variant asked for, the preset's rules)
and a ``Judge`` returns a ``JudgeAnswer`` or raises ``JudgeUnavailable`` (fail closed).
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
        """A validated verdict, after retries under the error taxonomy; ``JudgeUnavailable``
        when none can be had (the caller keeps the image unchecked)."""
        ...
