"""A work item made again because a person asked, with their note as a correction.

The note is one more failed finding beside the judge's (``quality.feedback.corrected_prompt``:
the original prompt, then the corrections as quoted data), so the request differs from the
first and carries the reasons. The item keeps its key: a remake that passes lands where the
item's image belongs (the next run finds it there), one that fails again waits under
``review/`` with a new marker. ``prompt_sha256`` stays the row's: the product is unchanged.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from bananaflow.landing.verdict import CheckResult, Verdict
from bananaflow.planning.work import WorkItem
from bananaflow.quality.feedback import corrected_prompt

__all__ = ["REVIEWER_CHECK", "corrected_item", "reviewer_finding"]

#: The check name a reviewer's note is given among the findings.
REVIEWER_CHECK = "reviewer_note"


def reviewer_finding(note: str, who: str = "") -> Verdict:
    text = " ".join(note.split())[:1000] or "a person refused this image; make it again, faithful to the product"
    return Verdict(False, (CheckResult(REVIEWER_CHECK, False, text),), stage="human", model=who, note=note)


def corrected_item(item: WorkItem, note: str, verdicts: Sequence[Verdict] = ()) -> WorkItem:
    """``item`` asking again, corrected by the judge's findings so far and the reviewer's note."""
    return replace(item, prompt=corrected_prompt(item.prompt, [*verdicts, reviewer_finding(note)]))
