"""Reading the catalog and turning it into work items."""
from __future__ import annotations

from dataclasses import dataclass

from prefect import task

from bananaflow.catalog import CatalogLoad, Rejection, load_catalog
from bananaflow.prompts import PromptTemplate
from bananaflow.work import JobOptions, WorkItem, plan_work


@dataclass
class Plan:
    items: list[WorkItem]
    rejected: list[Rejection]
    catalog_rows: int


@task(name="plan-work", cache_policy=None, persist_result=False)
def plan(catalog: str, template: str | None, options: JobOptions, prefix: str, encoding: str | None = None) -> Plan:
    """Load and validate the catalog, render every prompt, fix every object key."""
    loaded: CatalogLoad = load_catalog(catalog, encoding=encoding)
    tmpl = PromptTemplate.from_file(template) if template else PromptTemplate.default()
    items = plan_work(loaded, tmpl, options, prefix)
    return Plan(items=items, rejected=loaded.rejected, catalog_rows=len(loaded.accepted) + len(loaded.rejected))
