"""The deployments of deployments/prefect.yaml, built in Python for ``serve`` and tests.

Keep the two in step: the YAML is what ``prefect deploy`` reads for a work pool; these are
what ``deployments/serve.py`` serves from one long-running process without a pool.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron, Interval

from bananaflow_prefect.flows.catalog_flow import catalog_to_images
from bananaflow_prefect.flows.retry_flow import retry_unfinished
from bananaflow_prefect.flows.sharded_flow import catalog_sharded

DEFAULT_CRON = "0 2 * * *"
DEFAULT_TIMEZONE = "UTC"
#: What an upstream job emits when a catalog file changes; its payload carries the URI.
CATALOG_UPDATED_TRIGGER = DeploymentEventTrigger(
    name="catalog.updated starts a run",
    expect={"catalog.updated"},
    match={"prefect.resource.id": "catalog.*"},
    parameters={"catalog": "{{ event.payload.catalog_uri }}"},
)


@dataclass(frozen=True)
class BlockNames:
    """The blocks every deployment passes to its flow (``bananaflow blocks create-from-env``)."""

    provider_block: str | None = "bananaflow-provider"
    store_block: str | None = "bananaflow-store"
    limits_block: str | None = "bananaflow-limits"

    def as_parameters(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass(frozen=True)
class Schedule:
    cron: str = DEFAULT_CRON
    timezone: str = DEFAULT_TIMEZONE
    retry_every: timedelta = field(default=timedelta(hours=1))


def build_deployments(
    catalog: str,
    schedule: Schedule = Schedule(),
    blocks: BlockNames = BlockNames(),
    defaults: dict[str, object] | None = None,
) -> list:
    """Nightly refresh, hourly retry, the catalog.updated trigger, the shard target and the
    scale-out fan-out, in that order (as RunnerDeployments). ``defaults`` are parameters
    every deployment passes (e.g. ``bucket`` when no store block is used)."""
    params = {**(defaults or {}), **blocks.as_parameters()}
    return [
        catalog_to_images.to_deployment(
            name="nightly-refresh",
            parameters={"catalog": catalog, **params},
            schedules=[Cron(schedule.cron, timezone=schedule.timezone)],
            concurrency_limit=1,
            tags=["bananaflow", "nightly"],
        ),
        retry_unfinished.to_deployment(
            name="retry-unfinished",
            parameters={"catalog": catalog, **params},
            schedules=[Interval(schedule.retry_every)],
            concurrency_limit=1,
            tags=["bananaflow", "retry"],
        ),
        catalog_to_images.to_deployment(
            name="on-catalog-updated", parameters=params, triggers=[CATALOG_UPDATED_TRIGGER], tags=["bananaflow", "triggered"]
        ),
        catalog_to_images.to_deployment(name="catalog-shard", parameters=params, tags=["bananaflow", "shard"]),
        catalog_sharded.to_deployment(
            name="scale-out", parameters={"shard_count": 2, **params}, tags=["bananaflow", "scale-out"]
        ),
    ]
