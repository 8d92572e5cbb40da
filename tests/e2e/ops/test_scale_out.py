"""Scale-out on Prefect: one catalog split into shard runs on a pool that two workers poll."""
from __future__ import annotations

import io

import boto3
import pandas as pd
import pytest

from deployments.local_stack import create_work_pool, deploy_all, start_worker, stop_process
from tests.e2e.conftest import products, write_catalog

pytestmark = pytest.mark.e2e
POOL = "ops-scale"
BUCKET = "ops-scale"


@pytest.fixture(scope="module")
def two_workers(ops_stack, tmp_path_factory):
    """Each worker takes at most two flow runs, so four shards need both of them."""
    ops_stack.save_blocks(BUCKET, max_in_flight=3)
    create_work_pool(POOL, ops_stack.env)
    deploy_all(ops_stack.env, catalog="unused.csv", pool=POOL, names=["catalog-shard"])
    logs = tmp_path_factory.mktemp("workers")
    workers = [start_worker(POOL, f"scale-worker-{i}", ops_stack.env, logs / f"worker-{i}.log", limit=2) for i in (1, 2)]
    try:
        yield ops_stack, [logs / f"worker-{i}.log" for i in (1, 2)]
    finally:
        for worker in workers:
            stop_process(worker)


def test_one_catalog_across_two_workers_every_item_exactly_once(two_workers, tmp_path):
    from flows.sharded_flow import catalog_sharded

    stack, worker_logs = two_workers
    items = products(40, "SHARD")
    catalog = write_catalog(tmp_path / "big.csv", items)
    calls_before = stack.simulator.stats()["requests_total"]
    # images that take a while, as real ones do: a worker at its limit of two runs cannot
    # finish its first shards and come back for the others before the second worker polls
    stack.simulator.configure(latency_s=(2.0, 3.0))
    try:
        result = catalog_sharded(
            catalog=str(catalog), shard_count=4, provider_block="bananaflow-provider", store_block="bananaflow-store",
            limits_block="bananaflow-limits", timeout_s=400,
        )
    finally:
        stack.simulator.configure(latency_s=(0.05, 0.15))

    assert [s["state"] for s in result["shards"]] == ["Completed"] * 4
    assert result["counts"] == {"succeeded": 40} and result["total"] == 40 and result["ok"]
    # the provider was asked for each image once: no shard overlapped another
    assert stack.simulator.stats()["requests_total"] - calls_before == 40

    client = boto3.client(
        "s3", endpoint_url=stack.s3.endpoint_url, aws_access_key_id=stack.s3.access_key,
        aws_secret_access_key=stack.s3.secret_key.reveal(), region_name="us-east-1",
    )
    seen: list[str] = []
    for shard in result["shards"]:
        key = shard["manifest"].removeprefix(f"s3://{BUCKET}/")
        frame = pd.read_parquet(io.BytesIO(client.get_object(Bucket=BUCKET, Key=key)["Body"].read()))
        assert int(shard["items"]) == len(frame) > 0
        seen += list(frame["sku"])
    assert sorted(seen) == sorted(p["sku"] for p in items), "every SKU in exactly one shard's manifest"

    # both workers ran shards, and every shard ran with the same limits block
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    with get_client(sync_client=True) as prefect:
        shard_runs = prefect.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["bananaflow-shard"])))
    shard_runs = [r for r in shard_runs if r.parameters.get("catalog") == str(catalog)]
    assert len(shard_runs) == 4
    assert {r.parameters["limits_block"] for r in shard_runs} == {"bananaflow-limits"}
    assert sorted(r.parameters["shard_index"] for r in shard_runs) == [0, 1, 2, 3]
    ran_on = [
        sum(f"Flow run '{r.name}' submitted to infrastructure" in log.read_text(errors="replace") for r in shard_runs)
        for log in worker_logs
    ]
    assert sum(ran_on) == 4 and all(n >= 1 for n in ran_on), f"shards per worker: {ran_on}"
