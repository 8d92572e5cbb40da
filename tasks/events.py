"""Events a run emits so downstream jobs (feeds, search indexing, QA) can react to it.

``bananaflow.batch.completed`` is emitted once when a catalog run (or one shard of it)
ends, with its counts and manifest; an automation or a ``DeploymentEventTrigger`` matching
that name starts whatever comes next. The resource is the bucket/prefix the images landed
in, so a trigger can match one shop's output only.
"""
from __future__ import annotations

from prefect.events import emit_event

from bananaflow.planning.sharding import Shard
from bananaflow.reports.summary import RunSummary

BATCH_COMPLETED = "bananaflow.batch.completed"
CATALOG_UPDATED = "catalog.updated"


def emit_batch_completed(summary: RunSummary, *, catalog: str, shard: Shard) -> None:
    """Announce a finished run; never raises (an event is not worth failing a run for)."""
    emit_event(
        event=BATCH_COMPLETED,
        resource={
            "prefect.resource.id": f"bananaflow.images.{summary.scheme}.{summary.bucket}.{summary.prefix}",
            "prefect.resource.name": f"{summary.scheme}://{summary.bucket}/{summary.prefix}",
        },
        payload={
            "run_id": summary.run_id,
            "catalog": catalog,
            "ok": summary.ok,
            "total": summary.total,
            "counts": dict(summary.counts),
            "rejected": summary.rejected,
            "cost_usd": summary.cost_usd,
            "manifest": dict(summary.manifest),
            "shard": {"index": shard.index, "count": shard.count},
            "flow_run_url": summary.flow_run_url,
        },
    )
