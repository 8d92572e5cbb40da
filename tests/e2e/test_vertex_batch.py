"""`--mode batch` on Vertex AI end to end: the simulator's batchPredictionJobs routes reading
and writing JSONL in a real Cloud Storage emulator, ADC from a service-account file whose
token_uri is the simulator, real S3 (weed mini) for the images and a real Prefect server."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from bananaflow.limits.budget import batch_worst_case_cost_usd
from bananaflow.providers.gcp_auth import forget_shared_tokens
from bananaflow.providers.models import get_model
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer
from tests.e2e.conftest import products, write_catalog
from tests.e2e.test_batch_flow import ledger_keys
from tests.e2e.test_catalog_flow import image_keys, run, s3_client
from tests.e2e.test_cli import bananaflow
from tests.vertex_fixtures import PROJECT, new_key, write_service_account

pytestmark = pytest.mark.e2e

PRO = "gemini-3-pro-image"
STAGING = "vertex-staging"


@pytest.fixture
def vertex_batch(gcs_env, tmp_path, monkeypatch):
    """The simulator as Vertex AI (OAuth from a service-account file), staging in the emulator."""
    private, public = new_key()
    gcs_env.create_bucket(STAGING)
    config = SimulatorConfig(latency_s=(0.01, 0.03), oauth_public_keys=(public,), batch_turnaround_s=0.3,
                             gcs_endpoint=gcs_env.endpoint_url)
    with SimulatorServer(config) as sim:
        key_file = write_service_account(tmp_path / "sa.json", private, sim.base_url + "/token")
        env = dict(GOOGLE_GENAI_USE_VERTEXAI="true", GOOGLE_CLOUD_PROJECT=PROJECT,
                   GOOGLE_APPLICATION_CREDENTIALS=str(key_file), GOOGLE_VERTEX_BASE_URL=sim.base_url,
                   BANANAFLOW_VERTEX_BATCH_STAGING=f"gs://{STAGING}/{tmp_path.name}",
                   BANANAFLOW_SPOOL_DIR=str(tmp_path / "spool"))
        for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "BANANAFLOW_PROVIDER",
                    "GOOGLE_CLOUD_LOCATION", "BANANAFLOW_VERTEX_BATCH_LOCATION"):
            monkeypatch.delenv(var, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        forget_shared_tokens()
        yield sim, env
    forget_shared_tokens()


def manifest(client, bucket: str, summary_uri: str) -> pd.DataFrame:
    key = summary_uri.removeprefix(f"s3://{bucket}/")
    return pd.read_parquet(io.BytesIO(client.get_object(Bucket=bucket, Key=key)["Body"].read()))


def staged(gcs, env: dict[str, str]) -> list[str]:
    """The objects under this test's staging prefix."""
    prefix = env["BANANAFLOW_VERTEX_BATCH_STAGING"].removeprefix(f"gs://{STAGING}/") + "/"
    return sorted(blob.name for blob in gcs.client().list_blobs(STAGING, prefix=prefix))


def test_half_price_rows_and_the_budget_held(prefect_api, s3_env, vertex_batch, gcs_env, tmp_path):
    sim, env = vertex_batch
    spec = get_model(PRO)
    reserve = batch_worst_case_cost_usd(spec, "1K")
    cap = round(4 * reserve + reserve / 2, 4)  # room for four items at batch prices, not five
    catalog = write_catalog(tmp_path / "c.csv", products(5, "VB"))
    summary = run(catalog=str(catalog), bucket="vertex-batch", prefix="vb", mode="batch", image_size="1K",
                  max_cost_usd=cap, batch_poll_max_s=0.3)

    assert summary["mode"] == "batch"
    assert summary["counts"] == {"succeeded": 4, "deferred": 1}
    assert sim.batch_stats()["batches_created"] == 1
    assert sim.stats()["by_route"].get("vertex.generateContent", 0) == 0, "batch mode never calls the realtime route"
    client = s3_client(s3_env)
    frame = manifest(client, "vertex-batch", summary["manifest"]["parquet"])
    made = frame[frame["status"] == "succeeded"]
    (job,) = set(made["batch_name"])
    assert job.startswith("projects/") and "/locations/us-central1/batchPredictionJobs/" in job
    assert set(made["mode"]) == {"batch"}
    for row in made.itertuples():
        full = spec.cost_from_usage(prompt_tokens=row.prompt_tokens, image_tokens=row.image_tokens,
                                    other_output_tokens=row.output_tokens - row.image_tokens)
        assert row.cost_usd - row.judge_cost_usd == pytest.approx(full / 2, abs=2e-6), "the image at half price"
        assert row.judge_cost_usd > 0, "and the quality gate's judge call on top"
    assert summary["cost_usd"] <= cap
    deferred = frame[frame["status"] == "deferred"]
    assert list(deferred["error_class"]) == ["BudgetExhausted"]
    assert len([k for k in image_keys(client, "vertex-batch", "vb") if k.endswith(".png")]) == 4
    # the JSONL went through Cloud Storage both ways, named by the ledger's display name
    files = staged(gcs_env, env)
    assert [f for f in files if f.endswith("input.jsonl")] and [f for f in files if f.endswith("predictions.jsonl")]
    (request,) = [json.loads(line) for f in files if f.endswith("input.jsonl")
                  for line in gcs_env.client().bucket(STAGING).blob(f).download_as_bytes().splitlines()][:1]
    assert set(request) == {"request"} and set(request["request"]["labels"]) == {"bananaflow-key"}
    assert ledger_keys(client, "vertex-batch", "vb", "open") == []


def test_a_model_vertex_batch_does_not_take_is_refused_in_one_line(vertex_batch, s3_env, tmp_path):
    _, env = vertex_batch
    catalog = write_catalog(tmp_path / "c.csv", products(2, "VR"))
    refused = bananaflow(["run", str(catalog), "--bucket", "vertex-batch", "--mode", "batch",
                          "--model", "gemini-3.1-flash-image"], {**os.environ, **env, "COLUMNS": "300"})
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert "does not take gemini-3.1-flash-image" in line and "gemini-3-pro-image" in line


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_killed_mid_batch_and_started_again_finds_its_job_and_pays_once(prefect_api, vertex_batch, gcs_env, tmp_path):
    """Google Cloud all the way: images, ledger and the batch's JSONL in the run's gs:// bucket."""
    sim, env = vertex_batch
    sim.configure(batch_turnaround_s=3600)  # the job will not end while the first process lives
    bucket = "vertex-kill"
    gcs_env.create_bucket(bucket)
    catalog = write_catalog(tmp_path / "c.csv", products(4, "VK"))
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AWS_"))}
    run_env.update(env, PREFECT_API_URL=prefect_api, PREFECT_LOGGING_LEVEL="WARNING", COLUMNS="200")
    run_env.pop("BANANAFLOW_VERTEX_BATCH_STAGING")  # the run's own bucket is in Cloud Storage
    args = ["run", str(catalog), "--bucket", f"gs://{bucket}/vk", "--mode", "batch", "--no-progress",
            "--batch-poll-max", "0.3"]
    gcs = gcs_env.client()

    def objects(prefix: str) -> list[str]:
        return sorted(blob.name for blob in gcs.list_blobs(bucket, prefix=prefix))

    def recorded() -> list[dict]:
        records = [json.loads(gcs.bucket(bucket).blob(name).download_as_bytes())
                   for name in objects("vk/runs/_batches/open/")]
        return [r for r in records if r["batch_name"]]

    proc = subprocess.Popen([sys.executable, "-m", "bananaflow.cli.main", *args], env=run_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        def submitted() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"the first run ended on its own: {proc.stderr.read().decode()[-2000:]}")
            return bool(recorded())

        _wait_for(submitted, 120, "the first run to create and record its Vertex job")
        time.sleep(1.0)  # polling now
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
    (record,) = recorded()
    assert sim.batch_stats()["batches_created"] == 1
    assert record["file_name"] == f"gs://{bucket}/vk/runs/_batches/vertex/bananaflow-{record['job_id']}/input.jsonl"
    assert not [n for n in objects("vk/") if n.endswith(".png")]

    sim.configure(batch_turnaround_s=0.0)  # Google finishes the job while nobody watches
    again = bananaflow(args, run_env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "made 4, failed 0" in again.stdout and "at the Batch-mode price" in again.stdout
    assert sim.batch_stats()["batches_created"] == 1, "the second run found the recorded job and created none"
    assert [n for n in objects("vk/runs/_batches/vertex/") if n.endswith("input.jsonl")] == \
        [record["file_name"].removeprefix(f"gs://{bucket}/")], "the requests were uploaded once"
    assert len([n for n in objects("vk/") if n.endswith(".png") and "/runs/" not in n]) == 4
    (latest,) = [n for n in objects("vk/runs/") if n.endswith("manifest.parquet")]
    frame = pd.read_parquet(io.BytesIO(gcs.bucket(bucket).blob(latest).download_as_bytes()))
    assert set(frame["status"]) == {"succeeded"} and set(frame["batch_name"]) == {record["batch_name"]}
    assert set(frame["mode"]) == {"batch"}
    spec = get_model(PRO)
    image_cost = frame["cost_usd"].sum() - frame["judge_cost_usd"].sum()  # the judge's calls are realtime
    assert image_cost == pytest.approx(sum(
        spec.cost_from_usage(prompt_tokens=r.prompt_tokens, image_tokens=r.image_tokens,
                             other_output_tokens=r.output_tokens - r.image_tokens) / 2 for r in frame.itertuples()),
        abs=1e-5)
    assert objects("vk/runs/_batches/open/") == []
