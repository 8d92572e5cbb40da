"""The catalog flow end to end: simulator + weed mini + a real Prefect server."""
from __future__ import annotations

import io

import boto3
import pandas as pd
import pytest
from botocore.config import Config
from PIL import Image

from bananaflow.providers.models import get_model
from tests.e2e.conftest import products, write_catalog
from tests.flow_params import flow_params

pytestmark = pytest.mark.e2e


def s3_client(server):
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key.reveal(),
        region_name="us-east-1",
        config=Config(signature_version="s3v4"),
    )


def image_keys(client, bucket: str, prefix: str) -> list[str]:
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        keys += [o["Key"] for o in page.get("Contents", []) if "/runs/" not in o["Key"]]
    return keys


def run(**params):
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images

    return catalog_to_images(**flow_params(**params))


def test_every_item_lands_with_its_pixel_size_and_a_manifest_row(prefect_api, s3_env, provider_env, tmp_path):
    sim = provider_env
    catalog = write_catalog(tmp_path / "catalog.csv", products(12))
    summary = run(
        catalog=str(catalog), bucket="e2e-basic", prefix="shop", image_size="2K", aspect_ratio="4:5", concurrency=4
    )
    assert summary["counts"] == {"succeeded": 12}
    assert summary["total"] == 12 and summary["ok"]

    client = s3_client(s3_env)
    keys = image_keys(client, "e2e-basic", "shop")
    assert len(keys) == 12
    expected = get_model("gemini-3-pro-image").expected_pixels("4:5", "2K")
    for key in keys:
        obj = client.get_object(Bucket="e2e-basic", Key=key)
        assert obj["ContentType"].startswith("image/")
        assert obj["Metadata"]["bananaflow-model"] == "gemini-3-pro-image"
        assert Image.open(io.BytesIO(obj["Body"].read())).size == expected

    manifest_key = summary["manifest"]["csv"].removeprefix("s3://e2e-basic/")
    frame = pd.read_csv(io.BytesIO(client.get_object(Bucket="e2e-basic", Key=manifest_key)["Body"].read()), dtype=str)
    assert sorted(frame["sku"]) == [p["sku"] for p in products(12)]
    assert set(frame["status"]) == {"succeeded"}
    assert set(frame["key"]) == set(keys)
    assert {int(w) for w in frame["width"]} == {expected[0]}
    parquet_key = summary["manifest"]["parquet"].removeprefix("s3://e2e-basic/")
    pq = pd.read_parquet(io.BytesIO(client.get_object(Bucket="e2e-basic", Key=parquet_key)["Body"].read()))
    assert len(pq) == 12 and pq["cost_usd"].sum() > 0

    # the concurrency limit is what the provider saw
    stats = sim.stats()
    assert 2 <= stats["max_in_flight_seen"] <= 4
    assert stats["requests_total"] == 12


def test_rerun_pays_nothing_for_images_that_exist(prefect_api, s3_env, provider_env, tmp_path):
    sim = provider_env
    catalog = write_catalog(tmp_path / "catalog.csv", products(5, "RE"))
    first = run(catalog=str(catalog), bucket="e2e-rerun", concurrency=3)
    assert first["counts"] == {"succeeded": 5}
    calls = sim.stats()["requests_total"]
    second = run(catalog=str(catalog), bucket="e2e-rerun", concurrency=3)
    assert second["counts"] == {"skipped_exists": 5}
    assert second["ok"]
    assert sim.stats()["requests_total"] == calls


def test_429_and_503_are_retried_after_the_servers_delay(prefect_api, s3_env, provider_env, tmp_path):
    sim = provider_env
    sim.configure(script={"model RL000": ["429", "503", "ok"], "model RL001": ["503", "ok"]}, script_retry_delay=1.5)
    catalog = write_catalog(tmp_path / "catalog.csv", products(4, "RL"))
    summary = run(catalog=str(catalog), bucket="e2e-retry", concurrency=4)
    assert summary["counts"] == {"succeeded": 4}
    assert summary["retries"] == 3

    log = [r for r in sim.request_log() if r["route"] == "generateContent"]
    by_prompt: dict[str, list[dict]] = {}
    for record in log:
        by_prompt.setdefault(record["prompt_sha256"], []).append(record)
    scripted = sorted((v for v in by_prompt.values() if len(v) > 1), key=len, reverse=True)
    assert [len(v) for v in scripted] == [3, 2]
    three = sorted(scripted[0], key=lambda r: r["t_start"])
    assert [r["http_status"] for r in three] == [429, 503, 200]
    # the retry after the 429 waited at least the 1.5 s the server asked for
    assert three[1]["t_start"] - three[0]["t_end"] >= 1.5


def test_safety_block_is_sent_once_and_ends_blocked(prefect_api, s3_env, provider_env, tmp_path):
    sim = provider_env
    sim.configure(blocked_words=("counterfeit",))
    rows = products(3, "BL")
    rows[1]["title"] = "Counterfeit designer handbag"
    catalog = write_catalog(tmp_path / "catalog.csv", rows)
    summary = run(catalog=str(catalog), bucket="e2e-blocked", concurrency=3)
    assert summary["counts"] == {"succeeded": 2, "blocked": 1}
    assert summary["ok"], "a safety block is the provider's decision, not a failure of the run"
    assert summary["failures"][0]["sku"] == "BL-001"
    assert summary["failures"][0]["error_class"] == "ContentBlocked"
    blocked_calls = [r for r in sim.request_log() if r["outcome"] == "blocked"]
    assert len(blocked_calls) == 1
    assert sim.stats()["requests_total"] == 3
    # the next night: the block is remembered beside the key, nothing is sent (or paid) again
    again = run(catalog=str(catalog), bucket="e2e-blocked", concurrency=3)
    assert again["counts"] == {"skipped_exists": 2, "blocked": 1} and again["ok"]
    assert sim.stats()["requests_total"] == 3
    # unless asked to (spend.retry_blocked / --retry-blocked)
    retried = run(catalog=str(catalog), bucket="e2e-blocked", concurrency=3, retry_blocked=True)
    assert retried["counts"] == {"skipped_exists": 2, "blocked": 1}
    assert sim.stats()["requests_total"] == 4


def test_thought_images_are_never_uploaded(prefect_api, s3_env, provider_env, tmp_path):
    sim = provider_env
    sim.configure(thought_images=2)
    catalog = write_catalog(tmp_path / "catalog.csv", products(3, "TH"))
    summary = run(catalog=str(catalog), bucket="e2e-thoughts", image_size="1K", aspect_ratio="16:9", concurrency=3)
    assert summary["counts"] == {"succeeded": 3}
    client = s3_client(s3_env)
    keys = image_keys(client, "e2e-thoughts", "bananaflow")
    assert len(keys) == 3
    for key in keys:
        body = client.get_object(Bucket="e2e-thoughts", Key=key)["Body"].read()
        assert Image.open(io.BytesIO(body)).size == (1376, 768)


def test_prefect_retries_a_chunk_whose_items_failed_retryably(prefect_api, s3_env, provider_env, tmp_path):
    """With one attempt per image in the engine, a 503 fails the item; Prefect's task retry
    runs the chunk again, which pays only for the failed item."""
    from bananaflow_prefect.blocks import GenerationLimits

    sim = provider_env
    GenerationLimits(max_in_flight=2, max_attempts=1).save("one-attempt", overwrite=True)
    sim.configure(script={"model PR001": ["503", "ok"]})
    catalog = write_catalog(tmp_path / "catalog.csv", products(3, "PR"))
    summary = run(catalog=str(catalog), bucket="e2e-prefect-retry", limits_block="one-attempt")
    assert summary["counts"] == {"succeeded": 3}
    # 3 first tries + 1 re-run of the failed item; the two good ones were not generated again
    assert sim.stats()["requests_total"] == 4
    statuses = [r["http_status"] for r in sim.request_log()]
    assert statuses.count(503) == 1
