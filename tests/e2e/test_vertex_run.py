"""`bananaflow run` on Vertex AI with nothing but google-genai's environment variables: a
service-account file (fresh RSA key) whose token_uri is the simulator's OAuth endpoint,
real S3 (weed mini) and a real Prefect server."""
from __future__ import annotations

import os

import pytest

from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer
from tests.e2e.conftest import products, write_catalog
from tests.e2e.test_cli import bananaflow
from tests.vertex_fixtures import PROJECT, new_key, write_service_account

pytestmark = pytest.mark.e2e


def test_run_on_vertex_with_adc_from_a_service_account_file(prefect_api, s3_env, tmp_path):
    private, public = new_key()
    config = SimulatorConfig(latency_s=(0.05, 0.1), oauth_public_keys=(public,), script={"VTX002": ["429", "ok"]},
                             script_retry_delay=0.05)
    with SimulatorServer(config) as sim:
        key_file = write_service_account(tmp_path / "sa.json", private, sim.base_url + "/token")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PREFECT_", "GEMINI_", "GOOGLE_", "OPENAI_", "BANANAFLOW_"))}
        env.update(s3_env.env())
        env.update(PREFECT_API_URL=prefect_api, COLUMNS="200", BANANAFLOW_SPOOL_DIR=str(tmp_path / "spool"),
                   GOOGLE_GENAI_USE_VERTEXAI="true", GOOGLE_CLOUD_PROJECT=PROJECT,
                   GOOGLE_APPLICATION_CREDENTIALS=str(key_file), GOOGLE_VERTEX_BASE_URL=sim.base_url)
        catalog = write_catalog(tmp_path / "c.csv", products(4, "VTX"))
        result = bananaflow(["run", str(catalog), "--bucket", "vertex-run", "--prefix", "v", "--concurrency", "4",
                             "--no-progress"], env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "made 4, failed 0" in result.stdout
        log = sim.request_log()
        assert {r["route"] for r in log} == {"vertex.generateContent"}
        assert sorted(r["outcome"] for r in log).count("429") == 1  # Dynamic Shared Quota 429, then retried
        assert sim.oauth_stats() == {"tokens_issued": 1, "tokens_refused": 0}  # one token for the whole run
        assert private.splitlines()[1] not in result.stdout + result.stderr

        doctor = bananaflow(["doctor", "--bucket", "vertex-run", "--prefix", "v"], env)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        for name in ("provider", "model", "endpoint", "credential", "quota", "bucket", "prefect"):
            assert any(line.startswith(f"ok   {name}") for line in doctor.stdout.splitlines()), doctor.stdout
        assert "wrote, read and deleted a probe object" in doctor.stdout and private.splitlines()[1] not in doctor.stdout

        refused = bananaflow(["run", str(catalog), "--bucket", "vertex-run", "--mode", "batch"], env)
        assert refused.returncode == 2
        assert "BANANAFLOW_VERTEX_BATCH_STAGING" in refused.stderr and "Traceback" not in refused.stderr
    keys = [o["Key"] for o in s3_env.client().list_objects_v2(Bucket="vertex-run", Prefix="v/")["Contents"]]
    assert sum(k.endswith(".png") for k in keys) == 4


def test_a_prefect_gcp_credentials_block_configures_the_vertex_route(prefect_api, s3_env, tmp_path, monkeypatch):
    from prefect_gcp import GcpCredentials

    from bananaflow.providers.gcp_auth import forget_shared_tokens
    from tests.e2e.test_catalog_flow import run
    from tests.vertex_fixtures import service_account_info

    private, public = new_key()
    with SimulatorServer(SimulatorConfig(latency_s=(0.01, 0.05), oauth_public_keys=(public,))) as sim:
        GcpCredentials(service_account_info=service_account_info(private, sim.base_url + "/token"),
                       project=PROJECT).save("e2e-gcp", overwrite=True)
        for var in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "GEMINI_API_KEY", "GOOGLE_API_KEY",
                    "BANANAFLOW_PROVIDER"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", sim.base_url)
        monkeypatch.setenv("BANANAFLOW_SPOOL_DIR", str(tmp_path / "spool"))
        forget_shared_tokens()
        summary = run(catalog=str(write_catalog(tmp_path / "c.csv", products(3, "GCP"))), bucket="vertex-block",
                      gcp_credentials="e2e-gcp")
        assert summary["counts"] == {"succeeded": 3}
        assert {r["route"] for r in sim.request_log()} == {"vertex.generateContent"}
        assert sim.oauth_stats()["tokens_issued"] == 1
    forget_shared_tokens()
