"""`bananaflow doctor --bucket gs://B` on a Google Cloud setup (Vertex on the simulator, the
Cloud Storage emulator behind a stand-in for IAM): 0 when every probe step passes, 1 naming
the role that is missing (roles/storage.objectAdmin) and the permission the refused step needed."""
from __future__ import annotations

import os

import pytest

from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer
from tests.e2e.gcs_iam_gate import KINDS, IamGate
from tests.e2e.test_cli import bananaflow
from tests.vertex_fixtures import PROJECT, SA_EMAIL, new_key, write_service_account

pytestmark = pytest.mark.e2e


def test_doctor_names_the_missing_role_for_each_refused_step(gcs_server, tmp_path):
    private, public = new_key()
    gcs_server.create_bucket("doctor-gcs")
    with SimulatorServer(SimulatorConfig(latency_s=(0.01, 0.02), oauth_public_keys=(public,))) as sim:
        key_file = write_service_account(tmp_path / "sa.json", private, sim.base_url + "/token")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PREFECT_", "GEMINI_", "GOOGLE_", "OPENAI_", "BANANAFLOW_", "AWS_", "STORAGE_"))}
        env.update(GOOGLE_GENAI_USE_VERTEXAI="true", GOOGLE_CLOUD_PROJECT=PROJECT, COLUMNS="200",
                   GOOGLE_APPLICATION_CREDENTIALS=str(key_file), GOOGLE_VERTEX_BASE_URL=sim.base_url,
                   BANANAFLOW_GCS_RETRY_S="2")
        for step, (_, _, permission) in KINDS.items():
            with IamGate(gcs_server.endpoint_url, deny={step}) as gate:
                result = bananaflow(["doctor", "--bucket", "gs://doctor-gcs/night"], {**env, "STORAGE_EMULATOR_HOST": gate.url})
            assert result.returncode == 1, result.stdout + result.stderr
            bucket = next(line for line in result.stdout.splitlines() if line.startswith("FAIL bucket"))
            assert f"the {step} step was refused (403, needs {permission})" in bucket
            assert f"missing role roles/storage.objectAdmin on the bucket for {SA_EMAIL}" in bucket
            assert (f"fix: gcloud storage buckets add-iam-policy-binding gs://doctor-gcs --member=serviceAccount:{SA_EMAIL}"
                    " --role=roles/storage.objectAdmin") in result.stdout
            assert [line for line in result.stdout.splitlines() if line.startswith("FAIL")] == [bucket], result.stdout
            assert "Traceback" not in result.stderr and private.splitlines()[1] not in result.stdout
        healthy = bananaflow(["doctor", "--bucket", "gs://doctor-gcs/night"], {**env, **gcs_server.env()})
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        assert "ok   bucket     gs://doctor-gcs at" in healthy.stdout
