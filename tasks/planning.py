"""Reading the catalog and turning it into work items (``bananaflow.planning.plan``, the
planner ``prompts``, ``estimate`` and the preflight check use too)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from prefect import get_run_logger, task

from bananaflow.catalog.loader import Rejection
from bananaflow.options import CatalogOptions
from bananaflow.planning.jobspec import Job
from bananaflow.planning.plan import plan_catalog
from bananaflow.planning.work import WorkItem


@dataclass
class Plan:
    items: list[WorkItem]
    rejected: list[Rejection]
    catalog_rows: int
    preset: str = ""
    skipped: list[Rejection] = field(default_factory=list)


@task(name="plan-work", cache_policy=None, persist_result=False)
def plan(catalog: str, job: Job, prefix: str, reading: CatalogOptions | None = None) -> Plan:
    """Load and validate the catalog, render every (product x variant) prompt, fix every key."""
    planned = plan_catalog(catalog, job, reading, prefix=prefix)
    loaded = planned.catalog
    if loaded.skipped:
        reasons = ", ".join(f"{n} {r}" for r, n in Counter(s.reason for s in loaded.skipped).items())
        get_run_logger().info("%d products skipped (%s); include_unpublished makes them", len(loaded.skipped), reasons)
    return Plan(
        items=planned.items,
        rejected=loaded.rejected,
        catalog_rows=len(loaded.accepted) + len(loaded.rejected) + len(loaded.skipped),
        preset=loaded.preset,
        skipped=loaded.skipped,
    )
