"""deployments/prefect.yaml (work pools) and deployments/definitions.py (serve) must agree."""
from __future__ import annotations

from pathlib import Path

import yaml

from bananaflow_prefect.deployments.definitions import BlockNames, Schedule, build_deployments

YAML = Path(__file__).resolve().parent.parent / "deployments" / "prefect.yaml"


def test_yaml_and_served_deployments_are_the_same_set():
    spec = yaml.safe_load(YAML.read_text())["deployments"]
    served = build_deployments("s3://feeds/catalog.csv")
    assert [d["name"] for d in spec] == [d.name for d in served]
    for entry, deployment in zip(spec, served):
        assert entry["entrypoint"].split(":")[1].replace("_", "-") == deployment.flow_name
        assert entry["parameters"]["store_block"] == deployment.parameters["store_block"] == "bananaflow-store"
        assert bool(entry.get("triggers")) == bool(deployment.triggers)


def test_serve_takes_cron_and_time_zone_as_parameters():
    nightly, retry, triggered, *_ = build_deployments(
        "cat.csv", Schedule("15 3 * * 1-5", "America/New_York"), BlockNames(None, None, None), {"bucket": "b"}
    )
    assert nightly.schedules[0].schedule.cron == "15 3 * * 1-5"
    assert nightly.schedules[0].schedule.timezone == "America/New_York"
    assert nightly.parameters == {"catalog": "cat.csv", "bucket": "b"}
    assert retry.schedules[0].schedule.interval.total_seconds() == 3600
    (trigger,) = triggered.triggers
    assert trigger.expect == {"catalog.updated"}
    assert trigger.parameters == {"catalog": "{{ event.payload.catalog_uri }}"}
