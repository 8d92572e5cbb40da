"""Reading the catalog and turning it into work items (``bananaflow.planning.plan``, the
planner ``prompts``, ``estimate`` and the preflight check use too)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from bananaflow.catalog import Rejection
from bananaflow.catalog.references import require_edit_mode
from bananaflow.options import CatalogOptions
from bananaflow.planning.jobspec import Job
from bananaflow.planning.plan import open_catalog_for, stream_items
from bananaflow.planning.sharding import Shard
from bananaflow.planning.work import WorkItem
from bananaflow.planning.work_store import WorkStore


@dataclass
class Plan:
    """The run's work items (on disk, see ``WorkStore``) and what the catalog held."""

    items: WorkStore
    rejected: list[Rejection]
    catalog_rows: int
    preset: str = ""
    skipped: list[Rejection] = field(default_factory=list)
    #: Products planned (this shard's), unchanged ones included.
    products: int = 0


def _refusing_references(items: Iterator[WorkItem], provider_kind: str) -> Iterator[WorkItem]:
    """``items``, stopping the run at the first one the provider cannot make (every shard
    refuses alike, whichever shard owns the item)."""
    for item in items:
        require_edit_mode((item,), provider_kind)
        yield item


@task(name="plan-work", cache_policy=NO_CACHE, persist_result=False)
def plan(catalog: str, job: Job, prefix: str, reading: CatalogOptions | None = None, *, provider_kind: str,
         shard: Shard = Shard()) -> Plan:
    """Read and validate the catalog as it streams, render every (product x variant)
    prompt, fix every key, and keep this shard's items on disk. A product group stays in
    one shard: its siblings need the leader's image as reference."""
    stream = open_catalog_for(catalog, reading)
    store = WorkStore()
    try:
        store.add(_refusing_references(stream_items(stream, job, prefix), provider_kind),
                  keep=None if shard.is_whole else lambda item: shard.owns(item.group_reference_stem or item.key_stem))
    except BaseException:
        store.close()
        raise
    if stream.skipped:
        reasons = ", ".join(f"{n} {r}" for r, n in Counter(s.reason for s in stream.skipped).items())
        get_run_logger().info("%d products skipped (%s); include_unpublished makes them", len(stream.skipped), reasons)
    return Plan(
        items=store,
        rejected=stream.rejected,
        catalog_rows=stream.accepted + len(stream.rejected) + len(stream.skipped),
        preset=stream.preset,
        skipped=stream.skipped,
        products=store.products,
    )
