"""The summary counted row by row equals the one built from all rows, and holds few of them."""
from bananaflow.landing.manifest import ManifestRow
from bananaflow.reports.summary import SummaryTally, summarize


def row(i: int, status: str, **kw) -> ManifestRow:
    return ManifestRow(run_id="r1", row_number=i, sku=f"SKU-{i}", variant="main", status=status,
                       latency_s=1.0 + i % 10, attempts=1 + i % 3, cost_usd=0.01, **kw)


def test_tally_matches_summarize_and_keeps_a_bounded_failures_table():
    rows = [row(i, "failed" if i % 3 == 0 else "succeeded", key="" if i % 3 == 0 else f"k{i}", model="gemini-3-pro-image")
            for i in range(300)]
    tally = SummaryTally(max_failures=50)
    for r in rows:
        tally.add(r, requested_model="gemini-3-pro-image")
    facts = dict(run_id="r1", rejected=2, wall_s=10.0, bucket="b", prefix="p")
    counted, built = tally.summary(**facts), summarize(rows, **facts)
    assert counted.to_dict() == built.to_dict()
    assert len(counted.failures) == 50 and counted.counts == {"failed": 100, "succeeded": 200}


def test_a_row_made_by_another_model_than_asked_counts_as_a_fallback():
    tally = SummaryTally()
    tally.add(row(1, "succeeded", model="gemini-3.1-flash-image"), requested_model="gemini-3-pro-image")
    tally.add(row(2, "succeeded", model="gemini-3-pro-image"), requested_model="gemini-3-pro-image")
    assert tally.summary(run_id="r", rejected=0, wall_s=1, bucket="b", prefix="").fallbacks == 1
