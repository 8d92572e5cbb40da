"""How often people overruled the judge: whether a shop can trust it, and which check to tune.

From review decisions (``landing.review_log``): an approval of an image the judge failed
overrules each check that failed it; a rejection of an image it passed overrules the judge as
a whole (no single check was wrong). Regeneration requests are not counted: the person asked
for a better image, not for a different verdict.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bananaflow.landing.review_log import APPROVE, REJECT, Decision
from bananaflow.reports import markdown_safe

__all__ = ["Agreement"]


@dataclass
class Agreement:
    decided: int = 0  # approvals and rejections of judged images
    approved_failed: int = 0
    rejected_passed: int = 0
    runs: int = 0
    #: check name -> (times it failed an image a person then decided on, times the person approved it anyway)
    by_check: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, decisions: Iterable[Decision]) -> Agreement:
        agreement = cls()
        runs: set[str] = set()
        for d in decisions:
            if d.action not in (APPROVE, REJECT) or d.judge_passed is None:
                continue
            runs.add(d.run)
            agreement.decided += 1
            agreement.approved_failed += d.action == APPROVE and not d.judge_passed
            agreement.rejected_passed += d.action == REJECT and d.judge_passed
            for check in d.failed_checks:
                counts = agreement.by_check.setdefault(check, [0, 0])
                counts[0] += 1
                counts[1] += d.action == APPROVE
        agreement.runs = len(runs)
        return agreement

    @property
    def overruled(self) -> int:
        return self.approved_failed + self.rejected_passed

    @property
    def agreement_rate(self) -> float | None:
        return None if not self.decided else round(1 - self.overruled / self.decided, 4)

    def to_dict(self) -> dict[str, object]:
        return {
            "decided": self.decided, "approved_failed": self.approved_failed, "rejected_passed": self.rejected_passed,
            "runs": self.runs, "agreement_rate": self.agreement_rate,
            "by_check": {name: {"failed": n, "approved_anyway": a} for name, (n, a) in sorted(self.by_check.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Agreement:
        checks = dict(data.get("by_check") or {})
        return cls(
            decided=int(data.get("decided") or 0), approved_failed=int(data.get("approved_failed") or 0),
            rejected_passed=int(data.get("rejected_passed") or 0), runs=int(data.get("runs") or 0),
            by_check={str(k): [int(v["failed"]), int(v["approved_anyway"])] for k, v in checks.items()},
        )

    def markdown(self) -> list[str]:
        """Lines for the run summary (none before anyone decided on a judged image)."""
        if not self.decided:
            return []
        lines = [
            "", f"### Reviewers and the judge (last {self.runs} reviewed run{'s' if self.runs != 1 else ''})", "",
            f"{self.decided} decisions on judged images; agreed with the judge {self.agreement_rate:.0%}: "
            f"approved what it failed {self.approved_failed}, rejected what it passed {self.rejected_passed}.",
        ]
        if self.by_check:
            lines += ["", "| check | failed images decided | approved anyway |", "|---|---|---|"]
            lines += [f"| {markdown_safe.cell(name)} | {n} | {a} ({a / n:.0%}) |"
                      for name, (n, a) in sorted(self.by_check.items())]
        return lines
