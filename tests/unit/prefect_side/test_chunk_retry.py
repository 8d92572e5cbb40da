"""A retried chunk runs again only the items that failed retryably; the others keep the rows
their first attempt gave them (an image stored then must not read as failed because S3 went
away before the retry)."""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from bananaflow.landing.manifest import ManifestRow
from bananaflow.planning.work import WorkItem
from bananaflow.reports.progress import ProgressTracker
from bananaflow_prefect.tasks import run_context
from bananaflow_prefect.tasks.generation import RetryableItemsFailed, generate_images
from bananaflow_prefect.tasks.run_context import RunConfig, RunContext

FLASH = "gemini-2.5-flash-image"


def items(n: int) -> list[WorkItem]:
    return [
        WorkItem(i, f"SKU-{i}", "main", f"photo {i}", FLASH, "1:1", "1K", f"p/SKU-{i}/main-d{i}", f"{i:064x}")
        for i in range(n)
    ]


def row(item: WorkItem, status: str, error_class: str = "", cost_usd: float | None = None) -> ManifestRow:
    return ManifestRow(
        run_id="r", row_number=item.row_number, sku=item.sku, variant=item.variant, status=status,
        error_class=error_class, retryable=status == "failed",  # the dispatcher's verdict, carried by the row
        cost_usd=cost_usd,
    )


class ScriptedPump:
    """Answers each attempt from a script: status per SKU, and remembers what it was asked."""

    def __init__(self, progress: ProgressTracker, *attempts: dict[str, tuple[str, str]]) -> None:
        self.progress, self.attempts, self.asked = progress, list(attempts), []

    def process(self, chunk: Sequence[WorkItem]) -> list[ManifestRow]:
        self.asked.append([item.sku for item in chunk])
        script = self.attempts.pop(0)
        rows = [row(item, *script[item.sku]) for item in chunk]
        for made in rows:
            self.progress.item_done(made)
        return rows


@pytest.fixture
def run() -> Iterator[RunContext]:
    config = RunConfig(
        run_id="retry-test", catalog="", options=None, job=None, provider_settings=None, store=None,  # type: ignore[arg-type]
        limits=None, policy=None,  # type: ignore[arg-type]  # a chunk task reads none of these
    )
    context = RunContext(config, admission=None, spool=None, guard=None)  # type: ignore[arg-type]
    context.state.begin(3)
    run_context.register(context)
    yield context
    run_context.release(context.run_id)
    context.state.rows.close()


def test_a_retried_chunk_runs_only_its_retryable_items_and_keeps_the_other_rows(run: RunContext) -> None:
    chunk = items(3)
    stored, s3_away = ("succeeded", ""), ("failed", "StorageError")
    state = run.state
    pump = ScriptedPump(
        state.progress,
        {"SKU-0": stored, "SKU-1": s3_away, "SKU-2": ("spooled", "StorageError")},
        {"SKU-1": stored},
    )
    with state.pumping(pump):  # type: ignore[arg-type]  # answers like an ItemPump
        with pytest.raises(RetryableItemsFailed):
            generate_images.fn(run.run_id, chunk)
        assert state.progress.counts() == {"succeeded": 1, "spooled": 1}  # the failed item is uncounted
        assert state.kept_for_retry == 2

        assert generate_images.fn(run.run_id, chunk) == 3
    assert pump.asked == [["SKU-0", "SKU-1", "SKU-2"], ["SKU-1"]]
    assert [(r.sku, r.status) for r in state.rows] == [("SKU-0", "succeeded"), ("SKU-1", "succeeded"), ("SKU-2", "spooled")]
    assert state.progress.counts() == {"succeeded": 2, "spooled": 1} and state.progress.done == 3
    assert state.kept_for_retry == 0, "kept rows are handed back once, not held for the run"
    assert state.pump is None


def test_an_items_row_includes_what_earlier_attempts_of_its_chunk_were_billed(run: RunContext) -> None:
    """Answers without an image are billed (prompt and thinking tokens): when the chunk runs
    again and the item is made, its one row says what it cost in all, as the budget counted."""
    chunk = items(2)
    no_image = ("failed", "NoImageReturned", 0.0021)
    pump = ScriptedPump(
        run.state.progress,
        {"SKU-0": no_image, "SKU-1": ("succeeded", "", 0.134)},
        {"SKU-0": no_image},
        {"SKU-0": ("succeeded", "", 0.1345)},
    )
    with run.state.pumping(pump):  # type: ignore[arg-type]
        for _ in range(2):
            with pytest.raises(RetryableItemsFailed):
                generate_images.fn(run.run_id, chunk)
        assert generate_images.fn(run.run_id, chunk) == 2
    assert {r.sku: r.cost_usd for r in run.state.rows} == {"SKU-0": pytest.approx(0.1387), "SKU-1": 0.134}
    assert run.state.tally.cost_usd == pytest.approx(0.1387 + 0.134)
