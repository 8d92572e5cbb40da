"""The images a run leaves for a person, shown as a page and turned into decisions.

``waiting_rows`` picks them from a run's rows (``needs_review``; with ``all`` every image the
run made too). ``describe`` is the Markdown above Prefect's pause form and what ``bananaflow
review`` prints: a thumbnail and a link per image (presigned, so the bucket stays private), the
judge's reasons, every catalog value escaped (``reports.markdown_safe``). ``decide`` turns a
``ReviewInput`` into one ``Decision`` per image and names what it could not place.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bananaflow.landing.keys import join_key
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.review_log import APPROVE, REGENERATE, REJECT, Decision
from bananaflow.landing.storage import ImageStore
from bananaflow.landing.verdict import NEEDS_REVIEW, Verdict
from bananaflow.quality.review_input import ReviewInput
from bananaflow.reports import markdown_safe
from bananaflow.reports.gallery import make_thumbnail

__all__ = [
    "LINK_EXPIRES_S", "ReviewPlan", "decide", "describe", "judge_verdict", "verdicts_of", "waiting_rows",
]

#: How long the page's links work (SigV4's longest): a review may wait days.
LINK_EXPIRES_S = 7 * 24 * 3600
#: Images listed on the page at most; the rest are named by count (``bananaflow review`` lists all).
PAGE_LIMIT = 60
#: Images made by the run that ``--review all`` shows beside the flagged ones.
MADE = frozenset({"succeeded"})


def verdicts_of(row: ManifestRow) -> list[Verdict]:
    """The row's verdicts, oldest first (none when the gate did not run)."""
    try:
        data = json.loads(row.verdicts) if row.verdicts else []
    except ValueError:
        return []
    return [Verdict.from_dict(v) for v in data if isinstance(v, dict)]


def judge_verdict(row: ManifestRow) -> Verdict | None:
    """The last machine verdict (free checks or judge) on the row's image."""
    return next((v for v in reversed(verdicts_of(row)) if v.stage != "human"), None)


def waiting_rows(rows: Iterable[ManifestRow], mode: str) -> list[ManifestRow]:
    """What waits for a person: ``flagged`` the images the gate left ``needs_review``; ``all``
    those and every image this run made; ``off`` nothing."""
    if mode not in ("flagged", "all"):
        return []
    wanted = {NEEDS_REVIEW} | (MADE if mode == "all" else set())
    return [row for row in rows if row.status in wanted and row.key]


def _thumb_url(store: ImageStore, prefix: str, key: str) -> str:
    """A 256-pixel JPEG of the image, made once under ``<prefix>/review/thumbs/``."""
    thumb_key = join_key(prefix, "review", "thumbs", hashlib.sha256(key.encode()).hexdigest()[:24] + ".jpg")
    if not store.exists(thumb_key):
        store.put_bytes(thumb_key, make_thumbnail(store.get_bytes(key)), "image/jpeg")
    return store.presigned_url(thumb_key, LINK_EXPIRES_S)


def _reasons(row: ManifestRow) -> str:
    verdict = judge_verdict(row)
    if verdict is None:
        return "not checked"
    if verdict.passed:
        return "passed"
    return "; ".join(markdown_safe.cell(reason, limit=160) for reason in verdict.reasons) or "failed"


def describe(rows: Sequence[ManifestRow], store: ImageStore, prefix: str, *, run: str = "", limit: int = PAGE_LIMIT) -> str:
    """The review page: what waits, how to answer. Thumbnails and full-size links sit side by
    side (Prefect's Markdown drops an image nested in a link)."""
    skus = sorted({row.sku for row in rows})
    lines = [
        f"## {len(rows)} image{'s' if len(rows) != 1 else ''} of {len(skus)} product{'s' if len(skus) != 1 else ''} "
        "wait for review",
        "",
        "Approve, reject (never published, not made again), or make again with a note (the note is sent as a "
        "correction and the new image is checked again). With **Approve all others**, every image not named is "
        "approved; otherwise it stays `needs_review`. SKUs are written as shown in the table."
        + (f" From a terminal: `bananaflow review {markdown_safe.text(run)}`." if run else ""),
        "",
        "| Image | SKU | Variant | Judge |",
        "|---|---|---|---|",
    ]
    for row in rows[:limit]:
        thumb = _thumb_url(store, prefix, row.key)
        full = store.presigned_url(row.key, LINK_EXPIRES_S)
        lines.append(f"| ![{markdown_safe.cell(row.sku, limit=60)}]({thumb}) [full size]({full}) | "
                     f"{markdown_safe.cell(row.sku)} | {markdown_safe.cell(row.variant)} | {_reasons(row)} |")
    if len(rows) > limit:
        lines += ["", f"…and {len(rows) - limit} more: `bananaflow review` lists them all."]
    return "\n".join(lines)


@dataclass(frozen=True)
class ReviewPlan:
    """A reviewer's answer placed on the waiting images: one decision per image decided, what
    stays waiting, and the SKUs the answer named that were not waiting (or named twice)."""

    decisions: tuple[Decision, ...]
    undecided: tuple[ManifestRow, ...]
    problems: tuple[str, ...]
    rows: tuple[ManifestRow, ...] = ()  # every waiting row the answer was placed on

    def by_action(self, action: str) -> list[Decision]:
        return [d for d in self.decisions if d.action == action]


def decide(rows: Sequence[ManifestRow], answer: ReviewInput, *, run: str, who: str, when: datetime | None = None) -> ReviewPlan:
    """Decisions for ``rows`` from ``answer``. A SKU named in two lists takes the strictest:
    reject, then make again, then approve."""
    stamp = (when or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    waiting = {row.sku for row in rows}
    notes = {r.sku.strip(): r.note for r in answer.regenerate}
    chosen: dict[str, str] = {}
    problems: list[str] = []
    for action, skus in ((REJECT, answer.reject), (REGENERATE, [r.sku for r in answer.regenerate]), (APPROVE, answer.approve)):
        for sku in (s.strip() for s in skus):
            if not sku:
                continue
            if sku not in waiting:
                problems.append(f"{sku!r} has no image waiting for review in this run")
            elif sku in chosen and chosen[sku] != action:
                problems.append(f"{sku!r} is named for {chosen[sku]} and {action}: {chosen[sku]} it is")
            else:
                chosen.setdefault(sku, action)
    decisions: list[Decision] = []
    undecided: list[ManifestRow] = []
    for row in rows:
        action = chosen.get(row.sku) or (APPROVE if answer.approve_all else "")
        if not action:
            undecided.append(row)
            continue
        verdict = judge_verdict(row)
        decisions.append(Decision(
            run=run, sku=row.sku, variant=row.variant, action=action, who=who, when=stamp,
            note=notes.get(row.sku, "") if action == REGENERATE else "", key=row.key, prompt_sha256=row.prompt_sha256,
            judge_passed=None if verdict is None else verdict.passed,
            failed_checks=tuple(c.name for c in verdict.checks if not c.passed) if verdict else (),
        ))
    return ReviewPlan(tuple(decisions), tuple(undecided), tuple(problems), tuple(rows))
