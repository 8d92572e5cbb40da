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

from bananaflow.errors import ConfigurationError
from bananaflow.reports.run_history import manifests_of_runs
from bananaflow_prefect.flows.store_config import resolve_store

#: The deployment each shard runs as (see deployments/prefect.yaml).
SHARD_DEPLOYMENT = "catalog-to-images/catalog-shard"


@flow(name="catalog-sharded", log_prints=True)
def catalog_sharded(
    catalog: str,
    shard_count: int = 2,
    bucket: str | None = None,
    prefix: str = "bananaflow",
    template: str | None = None,
    model: str | None = None,
    image_size: str = "1K",
    aspect_ratio: str = "1:1",
    variant: str = "main",
    concurrency: int = 8,
    requests_per_minute: float | None = None,
    provider_block: str | None = None,
    store_block: str | None = None,
    limits_block: str | None = None,
    job: str | None = None,
    shard_deployment: str = SHARD_DEPLOYMENT,
    timeout_s: float = 6 * 3600,
) -> dict:
    """Run ``catalog`` as ``shard_count`` deployment runs and report them as one.

    Returns ``{"shards": [...], "counts": {...}, "total": n, "ok": bool}``, where each shard
    entry has its flow run name, state and manifest.
    """
    if shard_count < 1:
        raise ConfigurationError(f"shard_count must be at least 1, got {shard_count}")
    logger = get_run_logger()
    store = resolve_store(bucket, prefix, store_block)  # fail here, not in N shards, on a bad store
    shared = dict(
        catalog=catalog, bucket=bucket, prefix=prefix, template=template, model=model, image_size=image_size,
        aspect_ratio=aspect_ratio, variant=variant, concurrency=concurrency,
        requests_per_minute=requests_per_minute, provider_block=provider_block, store_block=store_block,
        limits_block=limits_block, job=job,
    )
    parent = str(flow_run.id)
    runs = [
        run_deployment(
            shard_deployment,
            parameters={**shared, "shard_index": i, "shard_count": shard_count},
            timeout=0,
            idempotency_key=f"{parent}-shard-{i}-of-{shard_count}",  # a retried parent starts no twins
            flow_run_name=f"{flow_run.name}-shard-{i + 1}-of-{shard_count}",
            tags=["bananaflow-shard"],
        )
        for i in range(shard_count)
    ]
    logger.info("started %d shard runs of %s: %s", shard_count, shard_deployment, ", ".join(r.name for r in runs))

    finished = _wait_for_all([r.id for r in runs], timeout_s)
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
                "shard": f"{index + 1}/{shard_count}",
                "flow_run": run.name,
                "state": run.state.name if run.state else "?",
                "items": str(sum(shard_counts.values())),
                "counts": ", ".join(f"{n} {s}" for s, n in sorted(shard_counts.items())) or "no manifest",
                "manifest": f"s3://{store.bucket}/{manifest.key}" if manifest else "",
            }
        )
    create_table_artifact(table, key="bananaflow-shards", description="One row per shard run")
    all_completed = all(run.state and run.state.is_completed() for run in finished)
    ok = all_completed and all(s in ("succeeded", "skipped_exists", "blocked") for s in counts)
    if not all_completed:
        logger.warning("some shard runs did not complete: %s", ", ".join(r["flow_run"] for r in table if r["state"] != "Completed"))
    return {"shards": table, "counts": counts, "total": sum(counts.values()), "ok": ok}


def _wait_for_all(flow_run_ids: list, timeout_s: float, poll_s: float = 2.0) -> list:  # noqa: ANN001
    """The flow runs once all are final (or the timeout passes), in the given order."""
    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while True:
            runs = [client.read_flow_run(run_id) for run_id in flow_run_ids]
            if all(r.state and r.state.is_final() for r in runs) or time.monotonic() > deadline:
                return runs
            time.sleep(poll_s)
