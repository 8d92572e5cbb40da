"""The run summary a person reads at the end."""
from __future__ import annotations


def test_products_skipped_on_purpose_are_counted_in_the_summary() -> None:
    from bananaflow.reports.summary import summarize

    summary = summarize([], run_id="r", rejected=0, wall_s=1.0, bucket="b", prefix="p")
    summary.skipped_products = {"draft product": 2, "gift card": 1}
    assert "- products skipped on purpose: 3 (2 draft product, 1 gift card)" in summary.to_markdown()
    assert summary.to_dict()["skipped_products"] == {"draft product": 2, "gift card": 1}
