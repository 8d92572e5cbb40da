"""The one planner behind ``prompts``, ``estimate``, the preflight check and the flow.

Every command that reads a catalog reads it with the same ``CatalogOptions`` (encoding,
preset, column map, unpublished products, SKU column) and turns it into work items with the
same job, so what ``prompts`` shows, what ``estimate`` prices and what a run makes cannot
drift apart: a 3-variant job is 3 images per product everywhere.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from bananaflow.catalog.loader import CatalogLoad, load_catalog
from bananaflow.options import CatalogOptions
from bananaflow.planning.jobspec import Job
from bananaflow.planning.work import WorkItem, plan_job


@dataclass
class CatalogPlan:
    """A read catalog and every image its job would make."""

    catalog: CatalogLoad
    items: list[WorkItem]

    @property
    def products(self) -> int:
        return len({item.sku for item in self.items})


def read_catalog(catalog: str, reading: CatalogOptions | None = None) -> CatalogLoad:
    """``catalog`` read as the run's reading options say."""
    reading = reading or CatalogOptions()
    return load_catalog(
        catalog,
        encoding=reading.encoding,
        preset=reading.catalog_preset,
        rename=reading.column_map,
        include_unpublished=bool(reading.include_unpublished),
        sku_from=reading.sku_from,
    )


def plan_slices(loaded: CatalogLoad, job: Job, prefix: str, size: int) -> Iterator[list[WorkItem]]:
    """The work items ``size`` products at a time: every row checked without holding every prompt."""
    for start in range(0, len(loaded.accepted), size):
        yield plan_job(dataclasses.replace(loaded, accepted=loaded.accepted[start : start + size]), job, prefix)


def plan_catalog(catalog: str, job: Job, reading: CatalogOptions | None = None, *, prefix: str = "") -> CatalogPlan:
    """Read ``catalog`` and render every (product x variant) prompt with its key."""
    loaded = read_catalog(catalog, reading)
    return CatalogPlan(catalog=loaded, items=plan_job(loaded, job, prefix))
