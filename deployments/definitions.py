"""bananaflow's deployments, defined once.

``deployments/prefect.yaml`` (what ``prefect deploy`` reads for a work pool) is generated
from ``DEPLOYMENTS`` here (``python -m bananaflow_prefect.deployments.definitions >
deployments/prefect.yaml``; a test checks the file is current), and ``build_deployments``
turns the same list into RunnerDeployments for ``deployments/serve.py``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import yaml
from prefect.events import DeploymentEventTrigger, DeploymentTriggerTypes, TriggerTypes
from prefect.schedules import Cron, Interval

from bananaflow.options import BlockNames
from bananaflow_prefect.flows.catalog_flow import catalog_to_images
from bananaflow_prefect.flows.retry_flow import retry_unfinished
from bananaflow_prefect.flows.sharded_flow import catalog_sharded

DEFAULT_CRON = "0 2 * * *"
DEFAULT_TIMEZONE = "UTC"
#: The blocks every deployment names (``bananaflow blocks create-from-env`` saves them).
DEFAULT_BLOCKS = BlockNames(provider="bananaflow-provider", store="bananaflow-store", limits="bananaflow-limits")
FLOWS = {"catalog_to_images": catalog_to_images, "retry_unfinished": retry_unfinished,
         "catalog_sharded": catalog_sharded}
ENTRYPOINTS = {"catalog_to_images": "flows/catalog_flow.py:catalog_to_images",
               "retry_unfinished": "flows/retry_flow.py:retry_unfinished",
               "catalog_sharded": "flows/sharded_flow.py:catalog_sharded"}


@dataclass(frozen=True)
class Deployment:
    """One deployment: which flow, when it runs, and what it passes besides the blocks."""

    name: str
    flow: str
    description: str
    tags: tuple[str, ...]
    schedule: str | None = None  # "nightly" or "hourly"
    catalog_from_env: bool = False  # the nightly catalog ($BANANAFLOW_CATALOG / serve --catalog)
    triggered: bool = False  # started by a catalog.updated event
    concurrency_limit: int | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


DEPLOYMENTS = (
    Deployment("nightly-refresh", "catalog_to_images",
               "Regenerate images for the whole catalog every night; existing images are skipped.",
               ("bananaflow", "nightly"), schedule="nightly", catalog_from_env=True, concurrency_limit=1),
    Deployment("retry-unfinished", "retry_unfinished",
               "Every hour, re-run the catalog if the last run left failed or deferred items.",
               ("bananaflow", "retry"), schedule="hourly", catalog_from_env=True, concurrency_limit=1),
    Deployment("on-catalog-updated", "catalog_to_images",
               "Started by an upstream job's `catalog.updated` event; runs the catalog in its payload.",
               ("bananaflow", "triggered"), triggered=True),
    Deployment("catalog-shard", "catalog_to_images",
               "One shard of a catalog; started by catalog-sharded/scale-out, one run per shard.",
               ("bananaflow", "shard")),
    Deployment("scale-out", "catalog_sharded",
               "Split a catalog into shards and run each as a catalog-shard run on the pool.",
               ("bananaflow", "scale-out"), parameters={"execution": {"shard_count": 2}}),
)

#: What an upstream job emits when a catalog file changes; its payload carries the URI.
CATALOG_UPDATED = {"expect": ["catalog.updated"], "match": {"prefect.resource.id": "catalog.*"},
                   "parameters": {"catalog": "{{ event.payload.catalog_uri }}"}}


@dataclass(frozen=True)
class Schedule:
    cron: str = DEFAULT_CRON
    timezone: str = DEFAULT_TIMEZONE
    retry_every: timedelta = field(default=timedelta(hours=1))


def _parameters(spec: Deployment, catalog: str | None, blocks: BlockNames, defaults: dict[str, Any]) -> dict:
    params: dict[str, Any] = {**defaults, **spec.parameters}
    given_blocks = blocks.given()
    if given_blocks:
        params["blocks"] = given_blocks
    if spec.catalog_from_env and catalog is not None:
        params = {"catalog": catalog, **params}
    return params


def build_deployments(
    catalog: str, schedule: Schedule = Schedule(), blocks: BlockNames = DEFAULT_BLOCKS,
    defaults: dict[str, Any] | None = None,
) -> list:
    """``DEPLOYMENTS`` as RunnerDeployments for ``serve``. ``defaults`` are run-option groups
    every deployment passes (e.g. ``{"delivery": {"bucket": "b"}}`` when no store block is used)."""
    built = []
    for spec in DEPLOYMENTS:
        schedules = {"nightly": [Cron(schedule.cron, timezone=schedule.timezone)],
                     "hourly": [Interval(schedule.retry_every)]}.get(spec.schedule or "", None)
        triggers: list[DeploymentTriggerTypes | TriggerTypes] = [
            DeploymentEventTrigger(name="catalog.updated starts a run", expect=set(CATALOG_UPDATED["expect"]),
                                   match=CATALOG_UPDATED["match"], parameters=CATALOG_UPDATED["parameters"])]
        built.append(FLOWS[spec.flow].to_deployment(
            name=spec.name, description=spec.description, tags=list(spec.tags),
            parameters=_parameters(spec, catalog, blocks, defaults or {}), schedules=schedules,
            triggers=triggers if spec.triggered else None, concurrency_limit=spec.concurrency_limit,
        ))
    return built


YAML_HEADER = """\
# bananaflow deployments for a Prefect work pool. GENERATED from deployments/definitions.py:
#   python -m bananaflow_prefect.deployments.definitions > deployments/prefect.yaml
#
#   bananaflow up                         # does all of this on a local server (make up)
#   prefect work-pool create bananaflow --type process
#   BANANAFLOW_CATALOG=s3://shop-feeds/catalog.csv prefect --no-prompt deploy --all \\
#       --prefect-file deployments/prefect.yaml
#   prefect worker start --pool bananaflow
#
# Values written {{ $NAME }} come from the environment when you deploy (bananaflow up sets
# them all). The blocks named here hold the provider key, the bucket and the limits:
# create them with `bananaflow blocks create-from-env`.
#   BANANAFLOW_CATALOG        catalog the nightly refresh and the hourly retry read
#   BANANAFLOW_NIGHTLY_CRON   e.g. "0 2 * * *"        BANANAFLOW_TIMEZONE  e.g. "Europe/Berlin"
#   BANANAFLOW_WORK_POOL      e.g. "bananaflow"
# No build or push: a process worker runs the flows from this project's checkout (the
# working directory at deploy time). For Kubernetes/ECS pools see docs/operations.md.
"""


def prefect_yaml() -> str:
    """``deployments/prefect.yaml`` as it should be: ``DEPLOYMENTS`` with env placeholders."""
    entries = []
    for spec in DEPLOYMENTS:
        entry: dict[str, Any] = {
            "name": spec.name, "description": spec.description, "entrypoint": ENTRYPOINTS[spec.flow],
            "tags": list(spec.tags), "work_pool": {"name": "{{ $BANANAFLOW_WORK_POOL }}"},
        }
        if spec.concurrency_limit:
            entry["concurrency_limit"] = spec.concurrency_limit
        entry["parameters"] = _parameters(spec, "{{ $BANANAFLOW_CATALOG }}", DEFAULT_BLOCKS, {})
        if spec.schedule == "nightly":
            entry["schedules"] = [{"cron": "{{ $BANANAFLOW_NIGHTLY_CRON }}", "timezone": "{{ $BANANAFLOW_TIMEZONE }}",
                                   "active": True}]
        elif spec.schedule == "hourly":
            entry["schedules"] = [{"interval": 3600, "active": True}]
        if spec.triggered:
            entry["triggers"] = [{"type": "event", "enabled": True, **CATALOG_UPDATED}]
        entries.append(entry)
    body = {"name": "bananaflow", "prefect-version": "3.9.1", "build": None, "push": None, "deployments": entries}
    return YAML_HEADER + yaml.safe_dump(body, sort_keys=False, width=110)


if __name__ == "__main__":
    sys.stdout.write(prefect_yaml())
