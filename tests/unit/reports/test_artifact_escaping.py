"""Catalog values in the summary, the failures table, the gallery and the shards table are
text, never Markdown or HTML (Prefect renders all of them as Markdown; the browser side is
tests/e2e/ops/test_hostile_artifacts.py)."""
from __future__ import annotations

import re

import pytest

from bananaflow.landing.manifest import ManifestRow
from bananaflow.reports.gallery import GalleryEntry, gallery_markdown
from bananaflow.reports.markdown_safe import cell, text
from bananaflow.reports.summary import summarize

HOSTILE = [
    "# INJECTED",
    "[phish](http://outside.example/login)",
    "![x](http://outside.example/pixel.png)",
    "<img src=http://outside.example/a.png>",
    "CR\r| injected | row |",
    "www.outside.example",
    "ops@outside.example",
    "- list\n=====",
]
#: Markdown that still does something after escaping: an unescaped link/image opener, raw HTML,
#: a bare autolink, a heading, a line break.
_LIVE = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\(|<img|(?<!\\)www\.|https?(?<!\\):|\r|\n|^\s*#|(?<!\\)@outside\.example")


@pytest.mark.parametrize("value", HOSTILE)
def test_text_and_cell_leave_no_live_markdown(value: str) -> None:
    for escaped in (text(value), cell(value)):
        assert not _LIVE.search(escaped), escaped
        assert "|" not in escaped.replace("\\|", "")


def test_an_ordinary_sku_reads_the_same() -> None:
    assert cell("OBS-007") == "OBS-007" and text("Mug 12 cm") == "Mug 12 cm"


def _failed(i: int, sku: str) -> ManifestRow:
    return ManifestRow(run_id="r", row_number=i, sku=sku, variant="main", status="failed", error_class="ReferencePhotoError",
                       error_message=f"reference photo {sku} cannot be used", task_run_id=f"id-{i}")


def test_summary_failure_rows_and_failures_table_are_escaped() -> None:
    summary = summarize([_failed(i, sku) for i, sku in enumerate(HOSTILE)], run_id="r", rejected=0, wall_s=1.0,
                        bucket="b", prefix="p")
    for failure in summary.failures:
        failure["task_run_url"] = f"http://admin:pw-in-url@127.0.0.1:4200/runs/task-run/{failure['task_run_id']}"
    markdown = summary.to_markdown()
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "[logs](" in line]
    assert len(rows) == len(HOSTILE)
    assert all(line.replace("\\|", "").count("|") == 7 for line in rows)
    assert "pw-in-url" not in markdown and "[logs](http://***@127.0.0.1:4200/runs/task-run/id-0)" in markdown
    assert not [line for line in markdown.splitlines() if line.lstrip().startswith("# INJECTED")]
    for row in summary.failures_table():
        for name, value in row.items():
            if name != "task_run_url":
                assert not _LIVE.search(value), (name, value)
        assert row["task_run_url"].startswith("http://***@127.0.0.1:4200/runs/task-run/")
    # the flow's own result keeps the raw values (the CLI prints them as text)
    assert [f["sku"] for f in summary.failures] == HOSTILE


def test_gallery_shows_skus_as_text_beside_the_links() -> None:
    entries = [GalleryEntry(sku, "main", "succeeded", f"https://s3.example/t/{i}.jpg?X-Amz-Signature=ab",
                            f"https://s3.example/i/{i}.png") for i, sku in enumerate(HOSTILE)]
    markdown = gallery_markdown(entries, total_images=len(HOSTILE), columns=4)
    body = [line for line in markdown.splitlines() if "![" in line]
    assert all(line.replace("\\|", "").count("|") == 5 for line in body), body
    links = re.findall(r"(?<!\\)\[([^\]]*)\]\(([^)]*)\)", markdown)
    assert {label for label, _ in links} <= {"thumbnail", "full size"}
    assert all(url.startswith("https://s3.example/") for _, url in links)
