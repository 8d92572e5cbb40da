"""Output presets, QA and reference photos through the engine: the simulator's real HTTP
server and a real S3 server (weed mini), no Prefect."""
from __future__ import annotations

import asyncio
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from bananaflow.generation.pipeline import ItemProcessor
from bananaflow.generation.retry import RetryPolicy
from bananaflow.landing.storage import ImageStore
from bananaflow.limits.controller import RateController
from bananaflow.planning.work import WorkItem
from bananaflow.providers import make_provider
from bananaflow.providers.settings import ProviderSettings

pytestmark = pytest.mark.e2e
PHOTOS = Path(__file__).parent.parent / "fixtures" / "photos"


def make_item(sku: str, **changes) -> WorkItem:  # noqa: ANN003
    base = WorkItem(
        row_number=2, sku=sku, variant="main", prompt=f"A studio photo of product {sku} on white",
        model="gemini-3-pro-image", aspect_ratio="1:1", image_size="1K", key_stem=f"qa/{sku}/main-0123456789ab",
        prompt_sha256="0" * 64, output_preset="amazon-main",
    )
    return replace(base, **changes)


def process(items: list[WorkItem], bucket: str, run_id: str = "run-1"):  # noqa: ANN201
    store = ImageStore(bucket)
    store.ensure_bucket()

    async def go():  # noqa: ANN202
        provider = make_provider(ProviderSettings.from_env())
        try:
            processor = ItemProcessor(
                provider, store, RateController(4), RetryPolicy(initial_wait=0.05, max_wait=0.2), run_id=run_id
            )
            return await processor.process_all(items)
        finally:
            await provider.aclose()

    return asyncio.run(go()), store


def test_amazon_main_derivatives_land_beside_the_original(s3_env, provider_env) -> None:
    (row,), store = process([make_item("QA-OK")], "e2e-finish")
    assert row.status == "succeeded", row.error_message
    assert row.key == "qa/QA-OK/main-0123456789ab.png"
    derivatives = json.loads(row.derivatives)
    assert derivatives == {
        "amazon-main": "qa/QA-OK/main-0123456789ab--amazon-main.jpg",
        "thumb": "qa/QA-OK/main-0123456789ab--thumb.jpg",
    }
    main = Image.open(io.BytesIO(store.get_bytes(derivatives["amazon-main"])))
    assert main.format == "JPEG" and main.size == (1024, 1024) and main.getpixel((2, 2)) == (255, 255, 255)
    assert json.loads(row.qa)["passed"] is True and json.loads(row.qa)["fill"] >= 0.85
    # the next run finds the original and still lists its derivatives, without paying
    calls = provider_env.stats()["requests_total"]
    (again,), _ = process([make_item("QA-OK")], "e2e-finish", run_id="run-2")
    assert again.status == "skipped_exists" and json.loads(again.derivatives) == derivatives
    assert provider_env.stats()["requests_total"] == calls


def test_off_white_image_ends_qa_failed_with_numbers_and_is_kept(s3_env, provider_env) -> None:
    provider_env.configure(script={"product QA-GREY": ["off_white"]})
    (row,), store = process([make_item("QA-GREY")], "e2e-finish")
    assert row.status == "qa_failed" and row.error_class == "QAFailed"
    assert row.error_message.startswith("amazon-main QA failed: border_white=0.0 < 0.98")
    assert json.loads(row.qa)["border_white"] == 0.0
    assert row.key == "qa/QA-GREY/qa-failed/main-0123456789ab.png" and store.exists(row.key)
    assert row.derivatives == "" and store.find_existing("qa/QA-GREY/main-0123456789ab") is None
    assert row.cost_usd and row.cost_usd > 0


def test_failed_qa_is_regenerated_once_and_both_attempts_are_billed(s3_env, provider_env) -> None:
    provider_env.configure(script={"product QA-RETRY": ["off_white", "ok"], "product QA-TWICE": ["off_white", "off_white"]})
    items = [make_item(s, regenerate_on_qa_failure=True, key_stem=f"qa/{s}/main-0123456789ab") for s in ("QA-RETRY", "QA-TWICE", "QA-ONE")]
    (fixed, still_bad, first_time), _ = process(items, "e2e-finish")
    assert fixed.status == "succeeded" and fixed.attempts == 2
    assert first_time.status == "succeeded" and first_time.attempts == 1 and first_time.cost_usd > 0
    assert fixed.cost_usd == pytest.approx(2 * first_time.cost_usd)
    assert still_bad.status == "qa_failed" and still_bad.attempts == 2
    assert provider_env.stats()["requests_total"] == 5  # exactly one regeneration for each failed QA


def test_reference_photo_is_sent_and_a_broken_one_fails_only_its_item(s3_env, provider_env) -> None:
    items = [
        make_item("REF-OK", reference_links=(str(PHOTOS / "mug.png"),), key_stem="qa/REF-OK/main-0123456789ab",
                  reference_root=str(PHOTOS)),
        make_item("REF-BAD", reference_links=(str(PHOTOS / "broken.jpg"),), key_stem="qa/REF-BAD/main-0123456789ab",
                  reference_root=str(PHOTOS)),
    ]
    ok, bad = process(items, "e2e-finish")[0]
    assert ok.status == "succeeded"
    assert bad.status == "failed" and bad.error_class == "ReferencePhotoError"
    assert "broken.jpg is not a readable image" in bad.error_message
    log = provider_env.request_log()
    assert [r["reference_images"] for r in log] == [1]  # the broken one never reached the API


def test_a_retried_chunk_does_not_pay_again_for_this_runs_qa_failure(s3_env, provider_env) -> None:
    provider_env.configure(script={"product QA-AGAIN": ["off_white"]})
    item = make_item("QA-AGAIN", key_stem="qa/QA-AGAIN/main-0123456789ab")
    (first,), _ = process([item], "e2e-finish", run_id="run-a")
    (retried,), _ = process([item], "e2e-finish", run_id="run-a")
    assert first.status == retried.status == "qa_failed"
    assert retried.error_message == first.error_message and retried.cost_usd == first.cost_usd
    assert provider_env.stats()["requests_total"] == 1
    (next_night,), _ = process([item], "e2e-finish", run_id="run-b")  # a new run tries again
    assert next_night.status == "succeeded" and provider_env.stats()["requests_total"] == 2
