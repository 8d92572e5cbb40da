"""deployments/prefect.yaml (work pools) is generated from deployments/definitions.py (serve)."""
from __future__ import annotations

import yaml

from bananaflow.options import BlockNames, RunOptions
from bananaflow_prefect.deployments.definitions import Schedule, build_deployments, prefect_yaml
from tests.paths import ROOT

YAML = ROOT / "deployments" / "prefect.yaml"


def test_prefect_yaml_is_generated_from_the_definitions():
    assert YAML.read_text() == prefect_yaml(), (
        "deployments/prefect.yaml is stale: python -m bananaflow_prefect.deployments.definitions > deployments/prefect.yaml"
    )


def test_yaml_and_served_deployments_are_the_same_set():
    spec = yaml.safe_load(YAML.read_text())["deployments"]
    served = build_deployments("s3://feeds/catalog.csv")
    assert [d["name"] for d in spec] == [d.name for d in served]
    for entry, deployment in zip(spec, served):
        assert entry["entrypoint"].split(":")[1].replace("_", "-") == deployment.flow_name
        assert entry["parameters"]["blocks"] == deployment.parameters["blocks"]
        assert entry["parameters"]["blocks"]["store"] == "bananaflow-store"
        assert bool(entry.get("triggers")) == bool(deployment.triggers)
        # every parameter a deployment passes is a valid run option group
        RunOptions.model_validate({k: v for k, v in deployment.parameters.items() if k != "catalog"})


def test_serve_takes_cron_and_time_zone_as_parameters():
    nightly, retry, triggered, *_ = build_deployments(
        "cat.csv", Schedule("15 3 * * 1-5", "America/New_York"), BlockNames(), {"delivery": {"bucket": "b"}}
    )
    assert nightly.schedules[0].schedule.cron == "15 3 * * 1-5"
    assert nightly.schedules[0].schedule.timezone == "America/New_York"
    assert nightly.parameters == {"catalog": "cat.csv", "delivery": {"bucket": "b"}}
    assert retry.schedules[0].schedule.interval.total_seconds() == 3600
    (trigger,) = triggered.triggers
    assert trigger.expect == {"catalog.updated"}
    assert trigger.parameters == {"catalog": "{{ event.payload.catalog_uri }}"}


def test_a_google_cloud_shop_serves_a_nightly_auto_mode_run_into_cloud_storage():
    """docs/google-cloud.md's serve line: no blocks, a gs:// bucket, --mode auto."""
    from bananaflow_prefect.deployments.serve import deployments_from_args

    (nightly, retry, *_), limit = deployments_from_args([
        "--catalog", "gs://shop-feeds/catalog.csv", "--no-blocks", "--bucket", "gs://shop-images/catalog",
        "--mode", "auto", "--cron", "0 2 * * *", "--timezone", "Europe/Berlin", "--limit", "2"])
    expected = {"catalog": "gs://shop-feeds/catalog.csv", "delivery": {"bucket": "gs://shop-images/catalog"},
                "execution": {"mode": "auto"}}
    assert nightly.parameters == expected and retry.parameters == expected and limit == 2
    options = RunOptions.model_validate({k: v for k, v in nightly.parameters.items() if k != "catalog"})
    assert (options.execution.mode, options.delivery.bucket) == ("auto", "gs://shop-images/catalog")
