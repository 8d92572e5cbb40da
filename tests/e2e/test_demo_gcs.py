"""`bananaflow demo --gcs` (`make demo GCS=1`): the demo lands in a Cloud Storage emulator
instead of S3, and leaves its objects in the state dir. It uses the session's Prefect server
(the demo reuses a healthy server on its port rather than starting one)."""
from __future__ import annotations

import os
import urllib.parse

import pytest

from bananaflow.devstack.local_gcs import LocalGcsServer
from tests.e2e.conftest import products, write_catalog
from tests.e2e.test_cli import bananaflow

pytestmark = pytest.mark.e2e


def test_demo_gcs_lands_the_catalog_in_the_cloud_storage_emulator(prefect_api, tmp_path):
    port = urllib.parse.urlsplit(prefect_api).port
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "GEMINI_", "GOOGLE_", "AWS_", "STORAGE_", "BANANAFLOW_"))}
    env["COLUMNS"] = "200"
    catalog = write_catalog(tmp_path / "c.csv", products(4, "DEMO"))
    result = bananaflow(["demo", "--gcs", "--catalog", str(catalog), "--state-dir", str(tmp_path / "state"),
                         "--prefect-port", str(port), "--no-progress"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "images:    gs://bananaflow-demo/demo" in result.stdout and "made 4, failed 0" in result.stdout
    assert "a Cloud Storage emulator" in result.stdout
    with LocalGcsServer(tmp_path / "state" / "gcs") as gcs:  # its objects outlive the demo
        names = [b.name for b in gcs.client().list_blobs("bananaflow-demo", prefix="demo/")]
    assert sum(n.endswith(".png") and "/runs/" not in n for n in names) == 4
    assert any(n.endswith("/manifest.csv") for n in names)
