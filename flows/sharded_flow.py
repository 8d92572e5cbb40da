"""Scale-out on Prefect: one catalog, split into shards, each a deployment run on a work pool.

The parent run owns nothing but bookkeeping: it starts one run of the shard deployment per
shard (``run_deployment(..., timeout=0)``, so they run in parallel on whichever workers
poll the pool), waits for them, then reads every shard's manifest from the bucket and
publishes one table for the whole catalog. Each shard is an ordinary ``catalog-to-images``
run with ``shard_index``/``shard_count``; shards are disjoint by a hash of the SKU
(``bananaflow.planning.sharding``), and the deterministic object keys make a re-run of a shard that
died skip what it already made. Every shard must load the same limits (pass
``limits_block``) so each worker paces itself the same way.
"""
from __future__ import annotations

import time

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.runtime import flow_run

from bananaflow.landing.run_history import manifests_of_runs
from bananaflow.options import (
    BlockNames,
    CatalogOptions,
    DeliveryOptions,
    ExecutionOptions,
    ImageOptions,
    LimitOptions,
    QualityOptions,
    RunOptions,
    SpendOptions,
)
from bananaflow_prefect.flows.configure import resolve_store


@flow(name="catalog-sharded", log_prints=True)
def catalog_sharded(
    catalog: str,
    images: ImageOptions = ImageOptions(),
    reading: CatalogOptions = CatalogOptions(),
    delivery: DeliveryOptions = DeliveryOptions(),
    limits: LimitOptions = LimitOptions(),
    spend: SpendOptions = SpendOptions(),
    quality: QualityOptions = QualityOptions(),
    execution: ExecutionOptions = ExecutionOptions(shard_count=2),
    blocks: BlockNames = BlockNames(),
) -> dict:
    """Run ``catalog`` as ``execution.shard_count`` runs of ``execution.shard_deployment``,
    each given this run's options whole (budget, fallback, column map... included) plus its
    shard index, and report them as one.

    Returns ``{"shards": [...], "counts": {...}, "total": n, "ok": bool}``, where each shard
    entry has its flow run name, state and manifest.
    """
    logger = get_run_logger()
    options = RunOptions(images=images, reading=reading, delivery=delivery, limits=limits, spend=spend, quality=quality,
                         execution=execution, blocks=blocks)
    store, _ = resolve_store(options)  # fail here, not in N shards, on a bad store
    runs = [_start_shard(catalog, options, index) for index in range(execution.shard_count)]
    logger.info("started %d shard runs of %s: %s", len(runs), execution.shard_deployment,
                ", ".join(r.name for r in runs))
    finished = _wait_for_all([r.id for r in runs], execution.shard_wait_s)
    manifests = manifests_of_runs(store, [r.name for r in finished])
    counts: dict[str, int] = {}
    table = []
    for index, run in enumerate(finished):
        manifest = manifests.get(run.name)
        shard_counts = dict(manifest.counts) if manifest else {}
        for status, n in shard_counts.items():
            counts[status] = counts.get(status, 0) + n
        table.append(
            {
                "shard": f"{index + 1}/{execution.shard_count}",
                "flow_run": run.name,
                "state": run.state.name if run.state else "?",
                "items": str(sum(shard_counts.values())),
                "counts": ", ".join(f"{n} {s}" for s, n in sorted(shard_counts.items())) or "no manifest",
                "manifest": store.uri(manifest.key) if manifest else "",
            }
        )
    create_table_artifact(table, key="bananaflow-shards", description="One row per shard run")
    all_completed = all(run.state and run.state.is_completed() for run in finished)
    ok = all_completed and all(s in ("succeeded", "skipped_exists", "blocked") for s in counts)
    if not all_completed:
        unfinished = ", ".join(r["flow_run"] for r in table if r["state"] != "Completed")
        logger.warning("some shard runs did not complete: %s", unfinished)
    return {"shards": table, "counts": counts, "total": sum(counts.values()), "ok": ok}


def _start_shard(catalog: str, options: RunOptions, index: int):  # noqa: ANN202 (a FlowRun)
    """One shard's deployment run, started without waiting (the shards run in parallel)."""
    count = options.execution.shard_count
    shard = options.with_changes(execution={"shard_index": index})
    return run_deployment(
        options.execution.shard_deployment,
        parameters={"catalog": catalog, **shard.as_parameters()},
        timeout=0,
        idempotency_key=f"{flow_run.id}-shard-{index}-of-{count}",  # a retried parent starts no twins
        flow_run_name=f"{flow_run.name}-shard-{index + 1}-of-{count}",
        tags=["bananaflow-shard"],
    )


def _wait_for_all(flow_run_ids: list, timeout_s: float, poll_s: float = 2.0) -> list:  # noqa: ANN001
    """The flow runs once all are final (or the timeout passes), in the given order."""
    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while True:
            runs = [client.read_flow_run(run_id) for run_id in flow_run_ids]
            if all(r.state and r.state.is_final() for r in runs) or time.monotonic() > deadline:
                return runs
            time.sleep(poll_s)
