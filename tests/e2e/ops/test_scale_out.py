"""Scale-out on Prefect: one catalog split into shard runs on a pool that two workers poll,
with the project's limits holding for the two workers together.

* On the session's server (SQLite, no Redis): the limits block's ``worker_slots`` makes
  each shard take its share of the limits while it holds a slot of a Prefect global
  concurrency limit (the coarse cross-worker guard).
* On a server like production (``make up-scaled``): PostgreSQL, Redis messaging, and the
  workers' runs metering through Redis (``BANANAFLOW_REDIS_URL``).

The simulator's own counters judge both: its peak in-flight count and its busiest minute.
"""
from __future__ import annotations

import io
from collections import Counter

import boto3
import pandas as pd
import pytest

from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer
from bananaflow_prefect.deployments.local_stack import create_work_pool, deploy_all, start_worker, stop_process
from tests.e2e.conftest import products, write_catalog
from tests.e2e.ops.conftest import OpsStack, started_prefect_server
from tests.flow_params import flow_params

pytestmark = pytest.mark.e2e
BUCKET = "ops-scale"
MAX_IN_FLIGHT = 4


def _workers(stack: OpsStack, pool: str, logs, env: dict[str, str]) -> list:  # noqa: ANN001
    """Two workers that take at most two flow runs each, so four shards need both of them."""
    create_work_pool(pool, env)
    deploy_all(env, catalog="unused.csv", pool=pool, names=["catalog-shard"])
    return [start_worker(pool, f"{pool}-worker-{i}", env, logs / f"worker-{i}.log", limit=2) for i in (1, 2)]


def _run_sharded(stack: OpsStack, catalog, limits_block: str) -> dict:  # noqa: ANN001
    from bananaflow_prefect.flows.sharded_flow import catalog_sharded

    # images that take a while, as real ones do: a worker at its limit of two runs cannot
    # finish its first shards and come back for the others before the second worker polls
    stack.simulator.configure(latency_s=(1.0, 1.5))
    try:
        return catalog_sharded(**flow_params(
            catalog=str(catalog), shard_count=4, provider_block="bananaflow-provider", store_block="bananaflow-store",
            limits_block=limits_block, shard_wait_s=400,
        ))
    finally:
        stack.simulator.configure(latency_s=(0.05, 0.15))


def _assert_every_item_exactly_once(stack: OpsStack, result: dict, items: list[dict], calls: int) -> None:
    assert [s["state"] for s in result["shards"]] == ["Completed"] * 4
    assert result["counts"] == {"succeeded": len(items)} and result["total"] == len(items) and result["ok"]
    # each prompt paid once (no shard overlapped another); a 429 retried, or a regeneration the
    # quality gate asked for (a new prompt, with its corrections), is not an overlap
    paid = Counter(r["prompt_sha256"] for r in stack.simulator.request_log() if r["outcome"] == "ok")
    assert set(paid.values()) == {1} and len(paid) >= len(items) and calls >= len(items), (
        "the provider was asked for each image once: no shard overlapped another")
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


def _assert_both_workers_ran_shards(catalog, worker_logs, limits_block: str) -> None:  # noqa: ANN001
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    with get_client(sync_client=True) as prefect:
        shard_runs = prefect.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["bananaflow-shard"])))
    shard_runs = [r for r in shard_runs if r.parameters.get("catalog") == str(catalog)]
    assert len(shard_runs) == 4
    assert {r.parameters["blocks"]["limits"] for r in shard_runs} == {limits_block}
    assert sorted(r.parameters["execution"]["shard_index"] for r in shard_runs) == [0, 1, 2, 3]
    ran_on = [
        sum(f"Flow run '{r.name}' submitted to infrastructure" in log.read_text(errors="replace") for r in shard_runs)
        for log in worker_logs
    ]
    assert sum(ran_on) == 4 and all(n >= 1 for n in ran_on), f"shards per worker: {ran_on}"


def _shards_on_two_workers(stack: OpsStack, pool: str, tmp_path, env: dict[str, str], items: list[dict],
                           limits_block: str) -> dict:  # noqa: ANN001
    """Run ``items`` as 4 shards on two fresh workers; check every item was made exactly
    once and both workers took shards; return the simulator's counters for this run."""
    workers = _workers(stack, pool, tmp_path, env)
    catalog = write_catalog(tmp_path / "catalog.csv", items)
    stack.simulator.reset()  # its peak counters are this run's alone
    try:
        result = _run_sharded(stack, catalog, limits_block)
    finally:
        for worker in workers:
            stop_process(worker)
    stats = stack.simulator.stats()
    _assert_every_item_exactly_once(stack, result, items, stats["requests_total"])
    _assert_both_workers_ran_shards(catalog, [tmp_path / "worker-1.log", tmp_path / "worker-2.log"], limits_block)
    return stats


def test_without_redis_a_prefect_concurrency_limit_keeps_two_workers_within_the_limits(ops_stack, tmp_path):
    """No shared meter: each shard holds one of two slots and uses half the in-flight cap,
    so four shard runs on two workers never have more than the cap in flight together."""
    from bananaflow_prefect.blocks import GenerationLimits

    ops_stack.save_blocks(BUCKET, max_in_flight=MAX_IN_FLIGHT)
    GenerationLimits(max_in_flight=MAX_IN_FLIGHT, worker_slots=2).save("bananaflow-limits-slotted", overwrite=True)
    env = {k: v for k, v in ops_stack.env.items() if k != "BANANAFLOW_REDIS_URL"}
    stats = _shards_on_two_workers(ops_stack, "ops-scale", tmp_path, env, products(40, "SHARD"),
                                   "bananaflow-limits-slotted")
    assert stats["max_in_flight_seen"] <= MAX_IN_FLIGHT
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as prefect:
        guard = prefect.read_global_concurrency_limit_by_name("bananaflow-bananaflow-limits-slotted")
    assert guard.limit == 2 and guard.active_slots == 0  # every shard gave its slot back


@pytest.fixture(scope="module")
def scaled_stack(tmp_path_factory, s3_server, scaled_services):
    """``make up-scaled`` in miniature: a Prefect server on a PostgreSQL database of its own
    with Redis messaging, on free ports, and workers whose runs meter through Redis."""
    home = tmp_path_factory.mktemp("prefect-scaled")
    with SimulatorServer(SimulatorConfig(latency_s=(0.05, 0.15))) as sim:
        with started_prefect_server(home, extra_env=scaled_services.server_env) as api_url:
            stack = OpsStack(api_url, home, s3_server, sim, tmp_path_factory.mktemp("spool-scaled"))
            stack.env.update(scaled_services.meters_env)
            yield stack, scaled_services


def test_on_postgres_and_redis_two_workers_share_their_meters(scaled_stack, tmp_path):
    """The production shape: the runs' meters live in Redis, so the two workers together
    keep the in-flight cap and the per-minute limit; the server's runs live in PostgreSQL
    and its events went through Redis streams."""
    import redis

    from bananaflow_prefect.blocks import GenerationLimits

    stack, services = scaled_stack
    rpm = 20  # 28 images: the last 8 must wait for the shared minute, though four shards ask at once
    stack.save_blocks(BUCKET, max_in_flight=MAX_IN_FLIGHT)
    GenerationLimits(max_in_flight=MAX_IN_FLIGHT, requests_per_minute=rpm).save("bananaflow-limits", overwrite=True)
    stats = _shards_on_two_workers(stack, "ops-scaled", tmp_path, stack.env, products(28, "SCALED"), "bananaflow-limits")
    assert stats["max_in_flight_seen"] <= MAX_IN_FLIGHT
    assert stats["max_requests_in_any_60s_window"] <= rpm
    assert "429" not in stats["by_outcome"], stats["by_outcome"]

    shard_runs = "SELECT count(*) FROM flow_run WHERE 'bananaflow-shard' = ANY(SELECT jsonb_array_elements_text(tags))"
    assert services.count(shard_runs) == 4
    messaging = redis.Redis.from_url(services.prefect_redis_url)
    assert messaging.type("events") == b"stream" and messaging.xinfo_stream("events")["entries-added"] > 0
