"""Reading the catalog and turning it into work items."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from prefect import task

from bananaflow.catalog.loader import CatalogLoad, Rejection, load_catalog
from bananaflow.planning.jobspec import Job
from bananaflow.planning.work import WorkItem, plan_job


@dataclass
class Plan:
    items: list[WorkItem]
    rejected: list[Rejection]
    catalog_rows: int
    preset: str = ""


@task(name="plan-work", cache_policy=None, persist_result=False)
def plan(
    catalog: str,
    job: Job,
    prefix: str,
    encoding: str | None = None,
    catalog_preset: str | None = None,
    column_map: Mapping[str, str] | None = None,
) -> Plan:
    """Load and validate the catalog, render every (product x variant) prompt, fix every key."""
    loaded: CatalogLoad = load_catalog(catalog, encoding=encoding, preset=catalog_preset, rename=column_map)
    items = plan_job(loaded, job, prefix)
    return Plan(
        items=items,
        rejected=loaded.rejected,
        catalog_rows=len(loaded.accepted) + len(loaded.rejected),
        preset=loaded.preset,
    )
