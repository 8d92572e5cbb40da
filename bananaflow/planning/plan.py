"""The one planner behind ``prompts``, ``estimate``, the preflight check and the flow.

Every command that reads a catalog reads it with the same ``CatalogOptions`` (encoding,
preset, column map, unpublished products, SKU column) and turns it into work items with the
same job, so what ``prompts`` shows, what ``estimate`` prices and what a run makes cannot
drift apart: a 3-variant job is 3 images per product everywhere.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bananaflow.catalog.loader import CatalogLoad, CatalogStream, load_catalog, open_catalog
from bananaflow.options import CatalogOptions
from bananaflow.planning.jobspec import Job
from bananaflow.planning.work import WorkItem, iter_items, plan_job


@dataclass
class CatalogPlan:
    """A read catalog and every image its job would make."""

    catalog: CatalogLoad
    items: list[WorkItem]

    @property
    def products(self) -> int:
        return len({item.sku for item in self.items})


def _reading_arguments(reading: CatalogOptions | None) -> dict[str, Any]:
    """The loader's keyword arguments for the run's reading options."""
    reading = reading or CatalogOptions()
    return {"encoding": reading.encoding, "preset": reading.catalog_preset, "rename": reading.column_map,
            "include_unpublished": bool(reading.include_unpublished), "sku_from": reading.sku_from}


def open_catalog_for(catalog: str, reading: CatalogOptions | None = None) -> CatalogStream:
    """``catalog`` opened as the run's reading options say, its rows read as they are used."""
    return open_catalog(catalog, **_reading_arguments(reading))


def stream_items(stream: CatalogStream, job: Job, prefix: str) -> Iterator[WorkItem]:
    """The work items of an opened catalog, made as its rows are read (and counted)."""
    return iter_items(stream, stream.source, job, prefix)


def plan_catalog(catalog: str, job: Job, reading: CatalogOptions | None = None, *, prefix: str = "") -> CatalogPlan:
    """Read ``catalog`` and render every (product x variant) prompt with its key."""
    loaded = load_catalog(catalog, **_reading_arguments(reading))
    return CatalogPlan(catalog=loaded, items=plan_job(loaded, job, prefix))
