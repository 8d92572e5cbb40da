"""What the CLI shows a person: a live progress bar and the end-of-run summary."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from bananaflow.reports import progress as progress_events
from bananaflow.reports.progress import ProgressTracker
from bananaflow.reports.summary import spool_line

console = Console()
err_console = Console(stderr=True)


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[None]:
    """Follow every run this process starts with a rich progress bar."""
    if not enabled:
        yield
        return
    bar = Progress(
        TextColumn("[bold]images"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )

    def follow(tracker: ProgressTracker) -> None:
        task_id = bar.add_task("images", total=tracker.total, detail="")

        def update(t: ProgressTracker) -> None:
            counts = t.counts()
            detail = " ".join(f"{status}={n}" for status, n in sorted(counts.items()))
            bar.update(task_id, completed=t.done, detail=detail)

        tracker.subscribe(update)

    stop_watching = progress_events.watch(follow)
    try:
        with bar:
            yield
    finally:
        stop_watching()


def print_summary(summary: Mapping[str, Any]) -> None:
    """``summary``: the catalog flow's result as it returns it (``RunSummary.to_dict()`` and its
    ``mode``), so its values are plain data, not typed fields."""
    counts: Mapping[str, int] = summary["counts"]
    table = Table(title="bananaflow run", show_header=True, header_style="bold")
    table.add_column("status")
    table.add_column("items", justify="right")
    for status in ("succeeded", "skipped_exists", "blocked", "failed", "deferred", "spooled"):
        if counts.get(status):
            table.add_row(status, str(counts[status]))
    for status, n in sorted(counts.items()):
        if status not in ("succeeded", "skipped_exists", "blocked", "failed", "deferred", "spooled"):
            table.add_row(status, str(n))
    table.add_row("[bold]total", f"[bold]{summary['total']}")
    console.print(table)
    p50, p95 = summary.get("latency_p50_s"), summary.get("latency_p95_s")
    lines = [
        f"made {counts.get('succeeded', 0)}, failed {counts.get('failed', 0)}, blocked {counts.get('blocked', 0)}, "
        f"already there {counts.get('skipped_exists', 0)}, rejected catalog rows {summary['rejected']}"
        + (f", unchanged since the previous run {counts['skipped_unchanged']}" if counts.get("skipped_unchanged") else "")
        + (f", failed QA {counts['qa_failed']}" if counts.get("qa_failed") else ""),
        f"images:    {summary.get('scheme') or 's3'}://{summary['bucket']}/{summary['prefix']}",
        *(
            f"{'write-back' if kind == 'writeback' else 'manifest'}:{' ' if kind == 'writeback' else '  '}{uri}"
            for kind, uri in dict(summary.get("manifest") or {}).items()
        ),
    ]
    if summary.get("rejected_uri"):
        lines.append(f"rejected:  {summary['rejected_uri']}")
    skipped = dict(summary.get("skipped_products") or {})
    if skipped:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
        lines.append(f"skipped:   {sum(skipped.values())} products on purpose ({reasons}); --include-unpublished makes them")
    lines += [
        f"cost:      ${float(summary['cost_usd']):.2f} "
        + ("at the Batch-mode price (half of list)" if summary.get("mode") == "batch" else "at list price"),
        f"wall time: {float(summary['wall_s']):.1f} s ({summary['images_per_min']} images/min; "
        f"latency p50 {p50 if p50 is not None else 'n/a'} s, p95 {p95 if p95 is not None else 'n/a'} s; "
        f"{summary['retries']} retries)",
    ]
    spool = summary.get("spool") or {}
    if spool.get("pending") or spool.get("uploaded"):
        lines.append(f"spool:     {spool_line(spool)}")
    lines += limit_lines(summary)
    lines.append(f"run:       {summary.get('flow_run_url') or summary['run_id']}")
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)
    failures = summary.get("failures") or []
    if failures:
        ft = Table(title="items that did not succeed", show_header=True)
        for col in ("row", "sku", "status", "error", "message"):
            ft.add_column(col, overflow="fold")
        for f in failures[:20]:
            ft.add_row(f["row_number"], f["sku"], f["status"], f["error_class"], f["error_message"][:120])
        console.print(ft)


def limit_lines(summary: Mapping[str, Any]) -> list[str]:
    """What the limits did: quota reset, budget, learned rate, breakers."""
    lines = []
    if summary.get("deferred_by_quota"):
        lines.append(f"quota:     daily quota used up, {summary['deferred_by_quota']} items deferred; it resets at "
                     f"{summary.get('quota_resets_at')} (midnight Pacific): run the same command again after that")
    if summary.get("deferred_by_budget"):
        lines.append(f"budget:    --max-cost reached, {summary['deferred_by_budget']} items deferred to the next run")
    limits = dict(summary.get("limits") or {})
    for scope, rpm in dict(limits.get("learned_rpm") or {}).items():
        lines.append(f"learned:   {scope}: {rpm} requests/min (kept for the next run)")
    for scope, n in dict(limits.get("breaker_opened") or {}).items():
        lines.append(f"breaker:   opened {n}x for {scope}")
    return lines
