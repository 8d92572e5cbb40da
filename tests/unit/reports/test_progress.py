"""Progress is counted, not kept per item, and a retried chunk's items count once."""
from bananaflow.landing.manifest import ManifestRow
from bananaflow.reports.progress import ProgressTracker


def row(n: int, status: str) -> ManifestRow:
    return ManifestRow(run_id="r", row_number=n, sku=f"SKU-{n}", variant="main", status=status)


def test_counts_items_by_status_as_they_finish() -> None:
    tracker = ProgressTracker(4)
    seen: list[int] = []
    tracker.subscribe(lambda t: seen.append(t.done))
    for n, status in enumerate(("succeeded", "succeeded", "failed")):
        tracker.item_done(row(n, status))
    assert seen == [1, 2, 3]
    assert tracker.counts() == {"succeeded": 2, "failed": 1}
    assert tracker.fraction == 0.75


def test_a_retried_chunk_is_counted_once() -> None:
    tracker = ProgressTracker(2)
    first = [row(1, "succeeded"), row(2, "failed")]
    for r in first:
        tracker.item_done(r)
    tracker.retract(first)  # the chunk task asks Prefect for a retry
    assert tracker.done == 0 and tracker.counts() == {}
    for r in (row(1, "skipped_exists"), row(2, "succeeded")):
        tracker.item_done(r)
    assert tracker.done == 2 and tracker.fraction == 1.0
    assert tracker.counts() == {"skipped_exists": 1, "succeeded": 1}


def test_holds_no_entry_per_item() -> None:
    tracker = ProgressTracker(10_000)
    for n in range(10_000):
        tracker.item_done(row(n, "succeeded"))
    assert tracker.done == 10_000
    assert not any(isinstance(v, (dict, list, set)) and len(v) > 10 for v in vars(tracker).values())


def test_retracting_what_was_never_counted_does_not_go_below_zero() -> None:
    tracker = ProgressTracker(1)
    tracker.retract([row(1, "failed")])
    assert tracker.done == 0 and tracker.counts() == {}
