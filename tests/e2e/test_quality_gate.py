"""The quality gate end to end: the simulator (its judge, scripted visible defects), a real S3
server (weed mini) and a real Prefect server.

One catalog, two runs, then an outage and its recovery:
* a product whose first image carries a defect is made again with the judge's reasons and
  published; one whose every image carries a defect ends ``needs_review`` after the allowed
  attempts, kept under ``review/`` and in no write-back, feed or published gallery;
* every published image passed its check; the manifest has each image's verdicts, attempts,
  reasons and judge cost; the judge saw the reference photo where the catalog had one; the
  summary's cost includes the judge's;
* the second run sends nothing for passed or needs_review products;
* a judge outage publishes nothing unchecked and loses nothing; the next run judges those
  images without generating them again.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from bananaflow.landing.review_store import read_review_marker
from bananaflow.landing.storage import ImageStore
from bananaflow.landing.verdict import Verdict
from bananaflow.quality.feedback import plan_regeneration
from bananaflow.testing.simulator.judge_stats import image_phash
from tests.e2e.conftest import write_catalog
from tests.flow_params import flow_params

pytestmark = pytest.mark.e2e
PHOTOS = Path(__file__).parent.parent / "fixtures" / "photos"

JOB = """
[[variants]]
name = "main"
prompt = "Studio photo of {{ title }} in {{ color }} on white"
preset = "google-merchant"
reference = true
[writeback]
format = "merchant"
public_base_url = "https://images.example.com/"
"""


def run(**params):  # noqa: ANN003, ANN201
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images

    return catalog_to_images(**flow_params(**params))


def catalog(tmp_path: Path, skus: list[str], *, reference: str = "") -> Path:
    shutil.copy(PHOTOS / "mug.png", tmp_path / "mug.png")
    rows = [{"sku": sku, "title": f"Mug {sku}", "color": "blue", "material": "stoneware",
             "image_link": "mug.png" if sku == reference else ""} for sku in skus]
    (tmp_path / "job.toml").write_text(JOB, encoding="utf-8")
    return write_catalog(tmp_path / "catalog.csv", rows)


def manifest(store: ImageStore, summary: dict) -> pd.DataFrame:  # type: ignore[type-arg]
    key = summary["manifest"]["parquet"].split("/", 3)[3]
    return pd.read_parquet(io.BytesIO(store.get_bytes(key))).set_index("sku")


def writeback_ids(store: ImageStore, summary: dict) -> set[str]:  # type: ignore[type-arg]
    uri = summary["manifest"].get("writeback")
    if not uri:
        return set()
    lines = store.get_bytes(uri.split("/", 3)[3]).decode().splitlines()[1:]
    return {line.split("\t")[0] for line in lines}


def gallery_thumbs(store: ImageStore, summary: dict) -> list[str]:  # type: ignore[type-arg]
    run_prefix = summary["manifest"]["csv"].split("/", 3)[3].rsplit("/", 1)[0]
    return store.list_keys(run_prefix + "/thumbs/")


def test_failed_images_are_made_again_or_left_for_review_and_the_next_run_sends_nothing(
    prefect_api, s3_env, provider_env, tmp_path
):
    sim = provider_env
    sim.configure(defects={"Mug GQ-ONCE": "once", "Mug GQ-ALWAYS": "always:extra_object"})
    skus = ["GQ-ALWAYS", "GQ-OK", "GQ-ONCE", "GQ-REF"]
    path = catalog(tmp_path, skus, reference="GQ-REF")
    params = dict(catalog=str(path), bucket="e2e-gate", prefix="shop", job=str(tmp_path / "job.toml"),
                  concurrency=3, qa_max_attempts=2)
    summary = run(**params)
    assert summary["counts"] == {"succeeded": 3, "needs_review": 1}
    store = ImageStore("e2e-gate")
    rows = manifest(store, summary)

    # made again with the reasons: the second request is the first prompt plus the corrections
    once = rows.loc["GQ-ONCE"]
    assert once["status"] == "succeeded" and once["qa_attempts"] == 1 and once["attempts"] == 2
    verdicts = [Verdict.from_dict(v) for v in json.loads(once["verdicts"])]
    assert [(v.stage, v.passed) for v in verdicts] == [("free", True), ("judge", False), ("free", True), ("judge", True)]
    sent = [r["prompt_sha256"] for r in sim.request_log()]
    first, corrected = once["prompt_sha256"], hashlib.sha256(
        plan_regeneration(_prompt("GQ-ONCE"), verdicts[:2]).prompt.encode()).hexdigest()
    assert first in sent and corrected in sent and first != corrected
    assert "text_and_labels" in once["qa_reasons"] or once["qa_reasons"]

    # always failing: the first image and two regenerations, then a person decides
    always = rows.loc["GQ-ALWAYS"]
    assert always["status"] == "needs_review" and always["qa_attempts"] == 2 and always["attempts"] == 3
    assert always["key"].startswith("shop/review/GQ-ALWAYS/") and store.exists(always["key"])
    assert store.find_existing(always["key"].replace("shop/review/", "shop/").rsplit(".", 1)[0]) is None
    assert "single_product" in always["qa_reasons"]
    marker = read_review_marker(store, always["key"].replace("shop/review/", "shop/").rsplit(".", 1)[0])
    assert marker is not None and marker.status == "needs_review" and len(marker.verdicts) == 6
    assert "GQ-ALWAYS" not in writeback_ids(store, summary)
    assert writeback_ids(store, summary) == {"GQ-OK", "GQ-ONCE", "GQ-REF"}
    assert len(gallery_thumbs(store, summary)) == 3  # the published section: passed images only

    # every published image passed the judge; every row has its verdicts, attempts and judge cost
    for sku in ("GQ-OK", "GQ-ONCE", "GQ-REF"):
        last = Verdict.from_dict(json.loads(rows.loc[sku, "verdicts"])[-1])
        assert last.stage == "judge" and last.passed and all(c.passed for c in last.checks)
        assert rows.loc[sku, "judge_cost_usd"] > 0
    assert rows["cost_usd"].sum() == pytest.approx(summary["cost_usd"], abs=1e-3)
    assert summary["judge_cost_usd"] == pytest.approx(rows["judge_cost_usd"].sum(), abs=1e-3) > 0
    assert summary["regenerated"] == 2 and summary["waiting_for_review"] == 1

    # the judge saw the reference photo of the product that has one (and only there)
    mug = image_phash(_png_bytes(PHOTOS / "mug.png"))
    shown = [entry for entry in sim.judge_log() if mug in entry["image_phashes"]]
    assert shown and all(entry["images"] == 2 for entry in shown)
    assert sum(1 for entry in sim.judge_log() if entry["images"] == 2) == len(shown)

    # the next night: nothing sent for passed or needs_review products
    images, judged = sim.stats()["requests_total"], sim.judge_stats()["requests_total"]
    again = run(**params, previous_manifest="latest")
    assert sim.stats()["requests_total"] == images and sim.judge_stats()["requests_total"] == judged
    assert again["counts"] == {"skipped_unchanged": 3, "needs_review": 1}
    assert manifest(store, again).loc["GQ-ALWAYS", "key"] == always["key"]
    # and without a manifest the review marker beside the key tells the same
    third = run(**params)
    assert third["counts"] == {"skipped_exists": 3, "needs_review": 1}
    assert sim.stats()["requests_total"] == images and sim.judge_stats()["requests_total"] == judged


def test_a_judge_outage_publishes_nothing_unchecked_and_the_next_run_judges_without_generating(
    prefect_api, s3_env, provider_env, tmp_path
):
    sim = provider_env
    sim.configure(judge_script={"": ["500"] * 40})
    path = catalog(tmp_path, ["OUT-1", "OUT-2", "OUT-3"])
    params = dict(catalog=str(path), bucket="e2e-gate-out", prefix="shop", job=str(tmp_path / "job.toml"),
                  concurrency=3, max_attempts=2)
    summary = run(**params)
    assert summary["counts"] == {"unchecked": 3} and not summary["ok"]
    store = ImageStore("e2e-gate-out")
    rows = manifest(store, summary)
    assert set(rows["error_class"]) == {"JudgeUnavailable"}
    assert all(key.startswith("shop/review/") and store.exists(key) for key in rows["key"])  # kept: paid for
    assert writeback_ids(store, summary) == set() and gallery_thumbs(store, summary) == []
    assert sim.stats()["requests_total"] == 3

    sim.configure(judge_script={})
    judged_before = sim.judge_stats()["requests_total"]
    after = run(**params, previous_manifest="latest")
    assert after["counts"] == {"succeeded": 3}
    assert sim.stats()["requests_total"] == 3  # judged, not generated again
    assert sim.judge_stats()["requests_total"] == judged_before + 3
    rows = manifest(store, after)
    assert all(not key.startswith("shop/review/") and store.exists(key) for key in rows["key"])
    assert writeback_ids(store, after) == {"OUT-1", "OUT-2", "OUT-3"}
    assert (rows["cost_usd"] == rows["judge_cost_usd"]).all()  # this run paid only for the judge


def _prompt(sku: str) -> str:
    return f"Studio photo of Mug {sku} in blue on white"


def _png_bytes(path: Path) -> bytes:
    out = io.BytesIO()
    Image.open(path).save(out, format="PNG")
    return out.getvalue()
