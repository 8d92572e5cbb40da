"""A budget is the job's: a sharded run (three shard runs at once on a worker) and the hourly
retries after it draw on one ``--max-cost`` account and one ``--daily-budget`` account, kept
in the job's bucket (no Redis here) with conditional writes, and read back at the end."""
from __future__ import annotations

import io
import json

import boto3
import pandas as pd
import pytest

from bananaflow_prefect.deployments.local_stack import create_work_pool, deploy_all, start_worker, stop_process
from tests.e2e.conftest import products, write_catalog
from tests.flow_params import flow_params

pytestmark = pytest.mark.e2e
BUCKET, PREFIX, POOL = "ops-budget", "bananaflow", "ops-budget"
CAP, RAISED, DAILY = 0.6, 3.0, 1.5  # CAP: about three images in all, so every shard of four defers one
WORST = 0.186  # the worst case reserved per 1K image of gemini-3-pro-image (bananaflow.limits.budget)


def _s3(stack):  # noqa: ANN001, ANN202
    return boto3.client("s3", endpoint_url=stack.s3.endpoint_url, aws_access_key_id=stack.s3.access_key,
                        aws_secret_access_key=stack.s3.secret_key.reveal(), region_name="us-east-1")


def _manifests(client) -> pd.DataFrame:  # noqa: ANN001
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/runs/")
            for o in page.get("Contents", []) if o["Key"].endswith("manifest.parquet")]
    return pd.concat([pd.read_parquet(io.BytesIO(client.get_object(Bucket=BUCKET, Key=k)["Body"].read())) for k in keys])


def _account(client, kind: str) -> dict:  # noqa: ANN001
    """The newest entry of the account's log in the bucket: its totals in micro-dollars."""
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET,
                                                                                  Prefix=f"{PREFIX}/budgets/{kind}-")
            for o in page.get("Contents", [])]
    assert len({k.rsplit("/", 1)[0] for k in keys}) == 1, keys  # one account of this kind for the whole job
    return json.loads(client.get_object(Bucket=BUCKET, Key=max(keys))["Body"].read())


def test_max_cost_and_daily_budget_hold_over_three_shards_and_their_retries(ops_stack, tmp_path, monkeypatch):
    from bananaflow_prefect.blocks import GenerationLimits
    from bananaflow_prefect.flows.retry_flow import retry_unfinished
    from bananaflow_prefect.flows.sharded_flow import catalog_sharded

    monkeypatch.setenv("BANANAFLOW_SPOOL_DIR", str(tmp_path / "spool"))
    ops_stack.save_blocks(BUCKET, PREFIX)
    # the daily budget is a field of the limits block: every run that loads it shares it
    GenerationLimits(max_in_flight=4, daily_budget_usd=DAILY).save("bananaflow-limits-budget", overwrite=True)
    create_work_pool(POOL, ops_stack.env)
    deploy_all(ops_stack.env, catalog="unused.csv", pool=POOL, names=["catalog-shard"])
    worker = start_worker(POOL, f"{POOL}-worker", ops_stack.env, tmp_path / "worker.log", limit=3)
    sim, client = ops_stack.simulator, _s3(ops_stack)
    catalog = write_catalog(tmp_path / "catalog.csv", products(12, "BUD"))
    blocks = dict(provider_block="bananaflow-provider", store_block="bananaflow-store",
                  limits_block="bananaflow-limits-budget")
    sim.reset()
    try:
        sim.configure(latency_s=(0.3, 0.5))  # the three shards overlap
        sharded = catalog_sharded(**flow_params(catalog=str(catalog), shard_count=3, shard_wait_s=300,
                                                max_cost_usd=CAP, **blocks))
    finally:
        sim.configure(latency_s=(0.05, 0.15))
        stop_process(worker)
    assert [s["state"] for s in sharded["shards"]] == ["Completed"] * 3
    made, deferred = sharded["counts"].get("succeeded", 0), sharded["counts"].get("deferred", 0)
    assert made + deferred == 12 and 1 <= made <= 3 and deferred >= 9, sharded["counts"]
    rows = _manifests(client)
    spent = rows["cost_usd"].fillna(0).sum()
    # one cap for the three shards together (each alone would have made its four images)
    assert spent <= CAP and sim.stats()["requests_total"] == made
    assert set(rows.loc[rows["status"] == "deferred", "error_class"]) == {"BudgetExhausted"}
    work = _account(client, "work")
    assert work["reserved"] == 0 and work["spent"] == pytest.approx(spent * 1e6, abs=20)

    # the hourly retry: the items wait for budget, so nothing is planned or sent
    waiting = retry_unfinished(**flow_params(catalog=str(catalog), max_cost_usd=CAP, **blocks))
    assert waiting["summary"] is None and waiting["waiting_for_budget"] >= 1
    assert sim.stats()["requests_total"] == made

    # a larger --max-cost is more budget: the retry spends the difference, up to today's budget
    raised = retry_unfinished(**flow_params(catalog=str(catalog), max_cost_usd=RAISED, **blocks))
    summary = raised["summary"]
    budget = summary["limits"]["budget"]
    rows = _manifests(client)
    spent_today = rows.drop_duplicates(["sku", "status", "run_id"])["cost_usd"].fillna(0).sum()
    assert summary["counts"].get("succeeded", 0) >= 1 and summary["counts"].get("deferred", 0) >= 1
    assert spent_today <= DAILY < RAISED
    assert budget["spent_today_usd"] == pytest.approx(spent_today, abs=1e-3)
    assert budget["left_today_usd"] == pytest.approx(DAILY - spent_today, abs=1e-3) and budget["left_today_usd"] < 2 * WORST  # noqa: E501 - less than two items' reservations (image and judge) were left unspent
    assert budget["work_spent_usd"] == pytest.approx(spent_today, abs=1e-3)  # all of it on this one catalog
    assert any("--daily-budget" in f["error_message"] for f in summary["failures"] if f["status"] == "deferred")
    assert _account(client, "day")["spent"] == pytest.approx(spent_today * 1e6, abs=20)

    # and the next hour waits for tomorrow's budget instead of paying
    calls = sim.stats()["requests_total"]
    later = retry_unfinished(**flow_params(catalog=str(catalog), max_cost_usd=RAISED, **blocks))
    # (a retry that still fits one item may make it; none may pass today's budget)
    assert _account(client, "day")["spent"] <= DAILY * 1e6 + 20, "the daily budget held over every run of the day"
    if later.get("waiting_for_budget"):
        assert sim.stats()["requests_total"] == calls
