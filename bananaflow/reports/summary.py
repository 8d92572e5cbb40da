"""What a run did, in numbers a person reads at the end of it.

Built only from manifest rows (plus the run's own facts), so the summary, the Prefect
artifact and the manifest can never disagree.
"""
from __future__ import annotations

import re
import statistics
import threading
import time
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bananaflow.landing.manifest import ManifestRow
from bananaflow.limits.admission import LimitsReport
from bananaflow.providers.quota_day import next_quota_reset
from bananaflow.reports.markdown_safe import cell
from bananaflow.secrets import mask_url

#: A link destination with nothing that could end it or start other Markdown.
_PLAIN_URL = re.compile(r"https?://[^\s()<>\[\]|`\\]+")
#: Statuses that leave nothing for a person to do.
OK_STATUSES = frozenset({"succeeded", "skipped_exists", "skipped_unchanged", "blocked", "rejected"})
#: The quality gate's statuses of images that wait for a person (or for a judge).
WAITING_STATUSES = ("needs_review", "unchecked")


@dataclass
class RunSummary:
    run_id: str
    total: int
    counts: dict[str, int]
    rejected: int
    cost_usd: float
    wall_s: float
    images_per_min: float
    latency_p50_s: float | None
    latency_p95_s: float | None
    retries: int
    bucket: str
    prefix: str
    manifest: dict[str, str] = field(default_factory=dict)
    #: The store's URI scheme: ``s3``, or ``gs`` for Cloud Storage.
    scheme: str = "s3"
    rejected_uri: str | None = None
    #: Products left out on purpose (drafts, archived, gift cards ...), by reason; ``include_unpublished`` makes them.
    skipped_products: dict[str, int] = field(default_factory=dict)
    flow_run_url: str | None = None
    failures: list[dict[str, str]] = field(default_factory=list)
    #: Local spool after the run: pending images/bytes waiting for S3, its bound, and how
    #: many spooled images this run uploaded (``bananaflow.landing.spool.SpoolState`` + "uploaded").
    spool: dict[str, object] = field(default_factory=dict)
    quota_resets_at: str | None = None
    deferred_by_quota: int = 0
    deferred_by_budget: int = 0
    limits: LimitsReport = field(default_factory=LimitsReport)
    fallbacks: int = 0
    #: Billed for answers that brought no image (safety blocks, NO_IMAGE): prompt and thinking tokens.
    cost_without_image_usd: float = 0.0
    #: The human review: this run's decisions by action, where they are, and how often reviewers
    #: overruled the judge over the last reviewed runs (``reports.agreement.Agreement.to_dict``).
    review: dict[str, object] = field(default_factory=dict)
    #: The quality gate: what its judge calls cost (part of ``cost_usd``), images made again after
    #: failed checks, images waiting for a person (``needs_review``) or a judge (``unchecked``).
    judge_cost_usd: float = 0.0
    regenerated: int = 0
    waiting_for_review: int = 0
    unchecked: int = 0

    @property
    def cost_per_accepted_usd(self) -> float | None:
        """All this run spent (failed attempts, regenerations, judge calls) per image it published."""
        return round(self.cost_usd / self.succeeded, 4) if self.succeeded else None

    @property
    def succeeded(self) -> int:
        return self.counts.get("succeeded", 0)

    @property
    def ok(self) -> bool:
        """Every item succeeded, already existed, or was refused by the safety filter."""
        return all(status in OK_STATUSES for status, n in self.counts.items() if n)

    def to_dict(self) -> dict[str, object]:
        out = dict(self.__dict__)
        out["ok"] = self.ok
        out["cost_per_accepted_usd"] = self.cost_per_accepted_usd
        return out

    def _quality_lines(self) -> list[str]:
        if not (self.judge_cost_usd or self.regenerated or self.waiting_for_review or self.unchecked):
            return []
        per = self.cost_per_accepted_usd
        share = f" ({self.judge_cost_usd / self.cost_usd:.0%} of the cost)" if self.cost_usd else ""
        lines = [
            f"- quality gate: judge ${self.judge_cost_usd:.4f}{share}; {self.regenerated} made again after failed "
            f"checks; cost per accepted image " + (f"${per:.4f}" if per is not None else "n/a"),
        ]
        if self.waiting_for_review:
            lines.append(f"- waiting for review: {self.waiting_for_review} (kept under review/, not published)")
        if self.unchecked:
            lines.append(f"- not judged (the judge was unavailable): {self.unchecked}; kept and judged by the next run")
        return lines

    def to_markdown(self) -> str:
        lines = [
            f"## bananaflow run {_code(self.run_id)}",
            "",
            "| status | items |",
            "|---|---:|",
            *(f"| {status} | {n} |" for status, n in sorted(self.counts.items())),
            f"| **total** | **{self.total}** |",
            "",
            f"- rejected catalog rows: {self.rejected}" + (f" ({_code(self.rejected_uri)})" if self.rejected_uri else ""),
            *([f"- products skipped on purpose: {_counted(self.skipped_products)} (include_unpublished makes them)"]
              if self.skipped_products else []),
            f"- images in {_code(f'{self.scheme}://{self.bucket}/{self.prefix}')}",
            f"- cost at list price rates, from the tokens the provider reported: ${self.cost_usd:.2f}"
            + (f" (of which ${self.cost_without_image_usd:.2f} for answers without an image: blocked or none)"
               if self.cost_without_image_usd else ""),
            *self._quality_lines(),
            f"- wall time: {self.wall_s:.1f} s, {self.images_per_min:.1f} images/min",
            f"- latency p50/p95: {_fmt(self.latency_p50_s)} / {_fmt(self.latency_p95_s)}",
            f"- retries: {self.retries}",
            *(f"- manifest ({kind}): {_code(uri)}" for kind, uri in self.manifest.items()),
        ]
        if self.spool:
            lines.append(f"- local spool: {spool_line(self.spool)}")
        if self.deferred_by_quota:
            lines.append(
                f"- daily quota used up: {self.deferred_by_quota} items deferred; the quota resets at "
                f"{self.quota_resets_at} (midnight Pacific) — run the same command again after that"
            )
        for scope, rpm in dict(self.limits.get("learned_rpm") or {}).items():
            lines.append(f"- learned limit for {scope}: {rpm} requests/min (kept for the next run)")
        for scope, n in dict(self.limits.get("throttled") or {}).items():
            lines.append(f"- throttled (429/503) {n}x on {scope}")
        if self.fallbacks:
            lines.append(f"- made by a fallback model: {self.fallbacks}")
        for scope, n in dict(self.limits.get("breaker_opened") or {}).items():
            lines.append(f"- circuit breaker opened {n}x for {scope}")
        lines += budget_lines(self.limits.get("budget"), self.deferred_by_budget)
        if self.review:
            lines += _review_lines(self.review)
        if self.failures:
            lines += ["", "### Failures", "", "| row | sku | status | error | message | task run |",
                      "|---:|---|---|---|---|---|"]
            lines += [
                f"| {cell(f['row_number'])} | {cell(f['sku'])} | {cell(f['status'])} | {cell(f['error_class'])} "
                f"| {cell(f['error_message'])} | {_link(f.get('task_run_url', ''))} |"
                for f in self.failures
            ]
        return "\n".join(lines)

    def failures_table(self) -> list[dict[str, str]]:
        """The failures as a table artifact's rows: Prefect's UI renders each cell as
        Markdown, so every value is escaped (``cell``); a task run's URL, which we built,
        stays a URL (credentials masked)."""
        return [
            {name: _url_cell(value) if name.endswith("_url") else cell(value) for name, value in failure.items()}
            for failure in self.failures
        ]


def _url_cell(url: str) -> str:
    url = mask_url(url)
    return url if not url or _PLAIN_URL.fullmatch(url) else cell(url)


def budget_lines(budget: Mapping[str, Any] | None, deferred: int) -> list[str]:
    """The budget's lines: this run's spend against the work's ``--max-cost`` (shards and
    retries included), spent and left today under ``--daily-budget``, and what was deferred."""
    lines: list[str] = []
    if budget and "work_spent_usd" in budget:
        lines.append(f"- budget (--max-cost ${budget['max_cost_usd']:.2f}, with shards and retries): "
                     f"${budget['work_spent_usd']:.2f} spent so far, ${budget['spent_usd']:.2f} by this run")
    if budget and "daily_budget_usd" in budget:
        lines.append(f"- today (--daily-budget ${budget['daily_budget_usd']:.2f}, every run of the job): "
                     f"${budget['spent_today_usd']:.2f} spent, ${budget['left_today_usd']:.2f} left")
    if deferred:
        lines.append(f"- budget reached: {deferred} items deferred until the budget is raised or renews")
    return lines


def _review_lines(review: Mapping[str, object]) -> list[str]:
    decided = review.get("decisions") or {}
    counts = ", ".join(f"{n} {action}" for action, n in sorted(dict(decided).items())) if isinstance(decided, dict) else ""
    lines = [f"- review: {review.get('outcome', '')}" + (f"; decisions: {counts}" if counts else "")
             + (f" (`{review['decisions_uri']}`)" if review.get("decisions_uri") else "")] if review.get("outcome") else []
    agreement = review.get("agreement")
    if isinstance(agreement, dict) and agreement.get("decided"):
        from bananaflow.reports.agreement import Agreement

        lines += Agreement.from_dict(agreement).markdown()
    return lines


def _link(url: str) -> str:
    """A link to a task run's logs: a URL we built (``url_for``), its credentials masked;
    one that would not stay a single link destination is shown as text instead."""
    url = mask_url(url)
    if not url:
        return ""
    return f"[logs]({url})" if _PLAIN_URL.fullmatch(url) else cell(url)


class SummaryTally:
    """The summary's numbers, counted row by row as rows are made: counters, one float per
    succeeded image for the latency percentiles, and at most ``max_failures`` failures, so a
    run keeps no row in memory to summarise it."""

    def __init__(self, max_failures: int = 50) -> None:
        self.max_failures = max_failures
        self.total = 0
        self.counts: Counter[str] = Counter()
        self.latencies = array("d")
        self.by_quota = self.by_budget = self.retries = self.fallbacks = 0
        self.cost_usd = self.cost_without_image_usd = self.judge_cost_usd = 0.0
        self.regenerated = 0
        self.last_finished: datetime | None = None
        self.failures: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def add(self, row: ManifestRow, *, requested_model: str = "") -> None:
        """Count one row; ``requested_model``: the model its item asked for (a row made by
        another one counts as a fallback)."""
        with self._lock:
            self._add(row, requested_model)

    def add_all(self, rows: Iterable[ManifestRow]) -> None:
        for row in rows:
            self.add(row)

    def _add(self, row: ManifestRow, requested_model: str) -> None:
        self.total += 1
        self.counts[row.status] += 1
        if row.status == "succeeded":
            if row.latency_s is not None:
                self.latencies.append(row.latency_s)
            if requested_model and row.model and not row.model.startswith(requested_model):
                self.fallbacks += 1
        if row.status == "deferred" and row.error_class == "QuotaExhausted":
            self.by_quota += 1
        if row.status == "deferred" and row.error_class == "BudgetExhausted":
            self.by_budget += 1
        if row.finished_at is not None and (self.last_finished is None or row.finished_at > self.last_finished):
            self.last_finished = row.finished_at
        self.cost_usd += row.cost_usd or 0.0
        self.judge_cost_usd += row.judge_cost_usd or 0.0
        self.regenerated += 1 if row.qa_attempts else 0
        if not row.key:
            self.cost_without_image_usd += row.cost_usd or 0.0
        self.retries += max(0, (row.attempts or 0) - 1)
        if row.status not in ("succeeded", "skipped_exists", "skipped_unchanged") and len(self.failures) < self.max_failures:
            self.failures.append({
                "row_number": str(row.row_number), "sku": row.sku, "status": row.status,
                "error_class": row.error_class, "error_message": row.error_message, "task_run_id": row.task_run_id,
            })

    def summary(self, *, run_id: str, rejected: int, wall_s: float, bucket: str, prefix: str) -> RunSummary:
        with self._lock:
            made = self.counts.get("succeeded", 0)
            latencies = sorted(self.latencies)
            resets_at = (
                next_quota_reset(self.last_finished.timestamp() if self.last_finished else time.time())
                .astimezone(UTC).isoformat(timespec="minutes")
                if self.by_quota
                else None
            )
            return RunSummary(
                run_id=run_id,
                total=self.total,
                counts=dict(self.counts),
                rejected=rejected,
                cost_usd=round(self.cost_usd, 4),
                cost_without_image_usd=round(self.cost_without_image_usd, 4),
                wall_s=round(wall_s, 2),
                images_per_min=round(made / wall_s * 60, 1) if wall_s > 0 else 0.0,
                latency_p50_s=_percentile(latencies, 50),
                latency_p95_s=_percentile(latencies, 95),
                retries=self.retries,
                bucket=bucket,
                prefix=prefix,
                failures=list(self.failures),
                quota_resets_at=resets_at,
                deferred_by_quota=self.by_quota,
                deferred_by_budget=self.by_budget,
                fallbacks=self.fallbacks,
                judge_cost_usd=round(self.judge_cost_usd, 4),
                regenerated=self.regenerated,
                waiting_for_review=self.counts.get("needs_review", 0),
                unchecked=self.counts.get("unchecked", 0),
            )


def summarize(
    rows: Iterable[ManifestRow],
    *,
    run_id: str,
    rejected: int,
    wall_s: float,
    bucket: str,
    prefix: str,
    max_failures: int = 50,
) -> RunSummary:
    tally = SummaryTally(max_failures)
    tally.add_all(rows)
    summary = tally.summary(run_id=run_id, rejected=rejected, wall_s=wall_s, bucket=bucket, prefix=prefix)
    summary.fallbacks = 0  # rows alone do not say which model their item asked for
    return summary


def spool_line(spool: Mapping[str, object]) -> str:
    """One line on what waits locally for S3 (and what this run uploaded from there)."""
    pending, size, bound = (_count(spool.get(name)) for name in ("pending", "bytes", "max_bytes"))
    text = f"{pending} images ({size / 1e6:.1f} MB of {bound / 1e6:.0f} MB) waiting for S3 in {spool.get('directory')}"
    if spool.get("uploaded"):
        text += f"; {spool['uploaded']} uploaded from it by this run"
    return text


def _count(value: object) -> int:
    """A number of the spool's state (``SpoolState`` fields: ints); absent is 0."""
    return int(value) if isinstance(value, int | float | str) else 0


def _percentile(values: list[float], pct: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    return round(statistics.quantiles(values, n=100, method="inclusive")[pct - 1], 3)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def _code(value: str) -> str:
    """A name of ours (run, bucket, prefix, object URI) as a code span, which Markdown
    shows as it is; a backtick or a line break in it cannot end the span."""
    return "`" + " ".join(mask_url(value).replace("`", "'").split()) + "`"


def _counted(counts: dict[str, int]) -> str:
    """``3 (2 draft, 1 gift card)``."""
    return f"{sum(counts.values())} (" + ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items())) + ")"
