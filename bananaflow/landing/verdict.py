"""What the quality gate decided about one image, as data a manifest row can carry.

The gate has stages (free pixel checks, the vision judge, a person) and each stage gives a
``Verdict``: an overall pass/fail and one ``CheckResult`` per check with its reason. An item's
outcome keeps every verdict in order (first image, each regeneration, a reviewer's decision),
so the manifest shows why an image was published, re-made or left for review.

The status words below are the gate's additions to the manifest's vocabulary.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHECK_NAMES", "FREE_CHECK_NAMES", "NEEDS_REVIEW", "REJECTED", "UNCHECKED",
    "CheckResult", "Verdict",
]

#: Published nowhere: failed every allowed attempt, waits for a person (``review/`` prefix).
NEEDS_REVIEW = "needs_review"
#: Paid for and kept, but the judge could not run: not published; judged on the next run.
UNCHECKED = "unchecked"
#: A person rejected it: not published, not made again unless the row changes or asked.
REJECTED = "rejected"

#: The judge's checks (one entry each in its answer).
CHECK_NAMES: tuple[str, ...] = (
    "same_product",          # shape, colour, material, logo and label placement match the reference/facts
    "text_and_labels",       # no invented, changed or garbled text
    "single_product",        # one product; no extra objects, hands or duplicates unless asked
    "clean_image",           # no artifacts, watermark, cut-off product
    "background_and_framing",  # background, framing and scene as the variant asked
)
#: The checks that cost nothing and run before the judge.
FREE_CHECK_NAMES: tuple[str, ...] = ("not_blank", "not_duplicate", "output_preset")


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    passed: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    """One stage's decision on one image. ``stage`` is ``free``, ``judge`` or ``human``."""

    passed: bool
    checks: tuple[CheckResult, ...] = ()
    stage: str = "judge"
    model: str = ""  # the judge model, or who decided for ``human``
    note: str = ""  # a reviewer's note, or the judge's one-line summary

    @property
    def reasons(self) -> tuple[str, ...]:
        """The failing checks as ``name: reason`` lines (what regeneration is told to fix)."""
        return tuple(f"{c.name}: {c.reason}" if c.reason else c.name for c in self.checks if not c.passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed, "stage": self.stage, "model": self.model, "note": self.note,
            "checks": [{"name": c.name, "passed": c.passed, "reason": c.reason} for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        checks = tuple(CheckResult(str(c.get("name", "")), bool(c.get("passed")), str(c.get("reason", "")))
                       for c in data.get("checks") or () if isinstance(c, dict))
        return cls(bool(data.get("passed")), checks, str(data.get("stage", "judge")), str(data.get("model", "")),
                   str(data.get("note", "")))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)
