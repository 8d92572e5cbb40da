"""Quotas, fallback and budget through the real flow: simulator + weed mini + Prefect."""
from __future__ import annotations

import io

import pandas as pd
import pytest

from tests.e2e.conftest import products, write_catalog
from tests.e2e.test_catalog_flow import run, s3_client

pytestmark = pytest.mark.e2e


def manifest(s3_env, summary, bucket: str) -> pd.DataFrame:
    key = summary["manifest"]["csv"].removeprefix(f"s3://{bucket}/")
    body = s3_client(s3_env).get_object(Bucket=bucket, Key=key)["Body"].read()
    return pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)


def test_daily_quota_defers_the_rest_and_the_next_run_picks_them_up(prefect_api, s3_env, provider_env, tmp_path):
    sim = provider_env
    sim.configure(requests_per_day=4)
    catalog = write_catalog(tmp_path / "catalog.csv", products(10, "DQ"))
    first = run(catalog=str(catalog), bucket="e2e-quota", concurrency=1)
    assert first["counts"] == {"succeeded": 4, "deferred": 6}
    assert first["deferred_by_quota"] == 6 and first["quota_resets_at"]
    assert sim.stats()["requests_total"] == 5  # four images and the one per-day 429; nothing after
    frame = manifest(s3_env, first, "e2e-quota")
    deferred = frame[frame["status"] == "deferred"]
    assert set(deferred["error_class"]) == {"QuotaExhausted"}
    assert sorted(deferred["attempts"].astype(int))[:5] == [0] * 5

    sim.reset()  # a new day at the provider: a fresh daily quota
    second = run(catalog=str(catalog), bucket="e2e-quota", concurrency=1)
    assert second["counts"] == {"skipped_exists": 4, "succeeded": 4, "deferred": 2}
    assert sim.stats()["requests_total"] == 5
    sim.reset()
    third = run(catalog=str(catalog), bucket="e2e-quota", concurrency=1)
    assert third["counts"] == {"skipped_exists": 8, "succeeded": 2} and third["ok"]


def test_fallback_model_makes_the_images_and_the_manifest_names_it(prefect_api, s3_env, provider_env, tmp_path):
    sim = provider_env
    sim.configure(quota_zero_models=("gemini-3-pro-image",))
    catalog = write_catalog(tmp_path / "catalog.csv", products(4, "FB"))
    summary = run(catalog=str(catalog), bucket="e2e-fallback", concurrency=2,
                  fallback_models=["gemini-3.1-flash-image"])
    assert summary["counts"] == {"succeeded": 4}
    frame = manifest(s3_env, summary, "e2e-fallback")
    assert set(frame["model"]) == {"gemini-3.1-flash-image"}
    assert set(frame["endpoint"]) == {"gemini:" + sim.base_url.removeprefix("http://")}

    forbidden = run(catalog=str(catalog), bucket="e2e-fallback", variant="hero", concurrency=2,
                    fallback_models=["gemini-3.1-flash-image"], allow_fallback=False)
    assert forbidden["counts"] == {"deferred": 4}


def test_max_cost_stops_admitting_and_defers_the_rest(prefect_api, s3_env, provider_env, tmp_path):
    catalog = write_catalog(tmp_path / "catalog.csv", products(8, "MC"))
    summary = run(catalog=str(catalog), bucket="e2e-budget", concurrency=1, max_cost_usd=0.5)
    from bananaflow.limits.budget import worst_case_cost_usd
    from bananaflow.providers.models import default_model_id, get_model

    made, deferred = summary["counts"].get("succeeded", 0), summary["counts"].get("deferred", 0)
    assert made + deferred == 8 and made >= 1 and deferred >= 1
    assert summary["cost_usd"] <= 0.5
    assert summary["deferred_by_budget"] == deferred
    budget = summary["limits"]["budget"]
    assert budget["max_cost_usd"] == 0.5 and budget["spent_usd"] <= 0.5
    # it stopped only when it had to: one more call's worst case would have crossed the cap
    # (a call that timed out counts at its worst case, since the provider may still bill it)
    assert budget["spent_usd"] + worst_case_cost_usd(get_model(default_model_id()), "1K") > 0.5


def test_limits_block_carries_the_daily_quota(prefect_api, s3_env, provider_env, tmp_path):
    from bananaflow_prefect.blocks import GenerationLimits

    GenerationLimits(max_in_flight=1, requests_per_day=2).save("e2e-two-a-day", overwrite=True)
    catalog = write_catalog(tmp_path / "catalog.csv", products(5, "LB"))
    summary = run(catalog=str(catalog), bucket="e2e-limits-block", limits_block="e2e-two-a-day")
    assert summary["counts"] == {"succeeded": 2, "deferred": 3}
    assert provider_env.stats()["requests_total"] == 2  # parked by our own meter: no 429 needed
