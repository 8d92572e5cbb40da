"""Google Cloud all the way: `bananaflow run --bucket gs://B/prefix` on the Vertex AI route
(simulator: Vertex routes + OAuth token endpoint, a service-account key file), the real Cloud
Storage emulator and a started Prefect server. Every image, the manifest, the write-back and
the gallery land in Cloud Storage; a re-run pays for nothing; the store going away mid-run
loses nothing (spooled, then uploaded by the next run); `doctor` checks the bucket."""
from __future__ import annotations

import csv
import io
import os
import threading
import time
import urllib.request
from collections import Counter

import pytest

from bananaflow.devstack.local_gcs import LocalGcsServer
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer
from tests.e2e.conftest import products, write_catalog
from tests.e2e.test_cli import bananaflow
from tests.flow_params import flow_params
from tests.vertex_fixtures import PROJECT, new_key, write_service_account

pytestmark = pytest.mark.e2e

BUCKET = "shop-gcs-run"


def vertex_env(prefect_api: str, gcs: LocalGcsServer, sim: SimulatorServer, key_file, tmp_path) -> dict[str, str]:  # noqa: ANN001
    """A Google Cloud shop's environment and nothing else: no AWS, no API key."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "GEMINI_", "GOOGLE_", "OPENAI_", "BANANAFLOW_", "AWS_", "STORAGE_"))}
    env.update(gcs.env())
    env.update(PREFECT_API_URL=prefect_api, COLUMNS="200", BANANAFLOW_SPOOL_DIR=str(tmp_path / "spool"),
               GOOGLE_GENAI_USE_VERTEXAI="true", GOOGLE_CLOUD_PROJECT=PROJECT,
               GOOGLE_APPLICATION_CREDENTIALS=str(key_file), GOOGLE_VERTEX_BASE_URL=sim.base_url)
    return env


def names(gcs: LocalGcsServer, prefix: str) -> list[str]:
    return sorted(b.name for b in gcs.client().list_blobs(BUCKET, prefix=prefix))


def test_run_on_vertex_lands_everything_in_cloud_storage_and_a_rerun_pays_nothing(prefect_api, gcs_server, tmp_path):
    private, public = new_key()
    gcs_server.create_bucket(BUCKET)
    config = SimulatorConfig(latency_s=(0.02, 0.06), oauth_public_keys=(public,))
    with SimulatorServer(config) as sim:
        key_file = write_service_account(tmp_path / "sa.json", private, sim.base_url + "/token")
        env = vertex_env(prefect_api, gcs_server, sim, key_file, tmp_path)
        catalog = write_catalog(tmp_path / "c.csv", products(5, "GCS"))
        args = ["run", str(catalog), "--bucket", f"gs://{BUCKET}/night", "--writeback", "merchant", "--mode", "auto",
                "--concurrency", "4", "--no-progress"]
        first = bananaflow(args, env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "made 5, failed 0" in first.stdout
        assert f"images:    gs://{BUCKET}/night" in first.stdout
        assert f"manifest:  gs://{BUCKET}/night/runs/" in first.stdout
        assert {r["route"] for r in sim.request_log()} == {"vertex.generateContent"}
        paid = len(sim.request_log())

        stored = names(gcs_server, "night/")
        images = [n for n in stored if n.endswith(".png") and "/runs/" not in n]
        assert len(images) == 5 and not [n for n in stored if "~claim" in n], stored
        runs = [n for n in stored if "/runs/" in n]
        assert sum(n.endswith("/manifest.csv") for n in runs) == 1 and sum(n.endswith("/manifest.parquet") for n in runs) == 1
        assert sum("/thumbs/" in n for n in runs) == 5  # the gallery's thumbnails
        feed_key = next(n for n in runs if n.endswith("/merchant_supplemental.tsv"))
        feed = list(csv.DictReader(io.StringIO(gcs_server.client().bucket(BUCKET).blob(feed_key)
                                               .download_as_text()), delimiter="\t"))
        assert sorted(r["id"] for r in feed) == [f"GCS-{i:03d}" for i in range(5)]
        link = feed[0]["image_link"]
        assert "X-Goog-Signature=" in link and "X-Goog-Algorithm=GOOG4-RSA-SHA256" in link  # V4, the SA's key
        with urllib.request.urlopen(link, timeout=10) as response:  # noqa: S310  # the emulator on 127.0.0.1
            assert response.read()[:8] == b"\x89PNG\r\n\x1a\n"
        assert private.splitlines()[1] not in first.stdout + first.stderr + link

        second = bananaflow(args, env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "made 0, failed 0" in second.stdout and "already there 5" in second.stdout
        assert len(sim.request_log()) == paid  # nothing sent, nothing paid

        doctor = bananaflow(["doctor", "--bucket", f"gs://{BUCKET}/night"], env)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert f"ok   bucket     gs://{BUCKET} at {gcs_server.endpoint_url}: wrote, read and deleted" in doctor.stdout
    assert not [n for n in names(gcs_server, "night/") if ".bananaflow-doctor" in n]


def test_cloud_storage_going_away_mid_run_loses_nothing(prefect_api, tmp_path, monkeypatch):
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images

    items = 16
    private, public = new_key()
    gcs = LocalGcsServer(tmp_path / "gcs").start()
    try:
        gcs.create_bucket("outage")
        with SimulatorServer(SimulatorConfig(latency_s=(0.2, 0.3), oauth_public_keys=(public,))) as sim:
            key_file = write_service_account(tmp_path / "sa.json", private, sim.base_url + "/token")
            for name, value in vertex_env(prefect_api, gcs, sim, key_file, tmp_path).items():
                if not name.startswith(("PREFECT_", "COLUMNS")):
                    monkeypatch.setenv(name, value)
            for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "BANANAFLOW_PROVIDER", "AWS_ENDPOINT_URL_S3"):
                monkeypatch.delenv(var, raising=False)
            monkeypatch.setenv("BANANAFLOW_GCS_RETRY_S", "2")  # fail fast while the store is away
            from bananaflow.providers.gcp_auth import forget_shared_tokens

            forget_shared_tokens()
            catalog = write_catalog(tmp_path / "catalog.csv", products(items, "GCD"))
            params = dict(catalog=str(catalog), bucket="gs://outage/o", concurrency=2)
            result: dict = {}
            runner = threading.Thread(target=lambda: result.update(catalog_to_images(**flow_params(**params))))
            runner.start()
            deadline = time.monotonic() + 120
            while len([n for n in names_in(gcs, "outage") if n.endswith(".png")]) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            gcs.stop()  # Cloud Storage is gone with images still being generated
            runner.join(timeout=240)
            assert not runner.is_alive(), "the run must end while the store is down"
            counts = result["counts"]
            assert sum(counts.values()) == items and counts.get("spooled", 0) >= 1, counts
            assert set(counts) <= {"succeeded", "spooled", "failed"}
            assert result["spool"]["pending"] == counts["spooled"]
            assert len(list((tmp_path / "spool" / "gs:outage").glob("*.bin"))) == counts["spooled"]
            assert not result["manifest"]["csv"].startswith("gs://")  # kept locally, and says so

            gcs.start()  # back on the same port with the same objects
            second = catalog_to_images(**flow_params(**params))
            log = sim.request_log()
        assert second["ok"], second["failures"]
        assert second["spool"]["uploaded"] == counts["spooled"] and second["spool"]["pending"] == 0
        stored = names_in(gcs, "outage")
        assert len([n for n in stored if n.endswith(".png") and "/runs/" not in n]) == items
        assert [n for n in stored if "~claim" in n] == []
        ok_per_prompt = Counter(r["prompt_sha256"] for r in log if r["outcome"] == "ok")
        assert len(ok_per_prompt) == items and set(ok_per_prompt.values()) == {1}  # nothing paid twice
        assert second["manifest"]["csv"].startswith("gs://outage/o/runs/")
    finally:
        gcs.stop()
        from bananaflow.providers.gcp_auth import forget_shared_tokens

        forget_shared_tokens()


def names_in(gcs: LocalGcsServer, bucket: str) -> list[str]:
    return sorted(b.name for b in gcs.client().list_blobs(bucket))


def test_prefect_gcp_blocks_open_the_cloud_storage_store(prefect_api, gcs_env, tmp_path):
    from prefect_gcp import GcpCredentials, GcsBucket

    from bananaflow.landing.gcs import GcsStore
    from bananaflow.options import BlockNames, DeliveryOptions, RunOptions
    from bananaflow_prefect.flows.configure import resolve_store
    from tests.vertex_fixtures import SA_EMAIL, service_account_info

    private, _ = new_key()
    gcs_env.create_bucket("block-bucket")
    credentials = GcpCredentials(service_account_info=service_account_info(private, "http://127.0.0.1:9/token"),
                                 project=PROJECT)
    credentials.save("e2e-gcs-sa", overwrite=True)
    GcsBucket(bucket="block-bucket", bucket_folder="from-block", gcp_credentials=credentials).save(
        "e2e-gcs-bucket", overwrite=True)

    store, _ = resolve_store(RunOptions(blocks=BlockNames(gcs_bucket="e2e-gcs-bucket")))
    assert isinstance(store, GcsStore) and (store.bucket, store.prefix) == ("block-bucket", "from-block")
    assert store.principal == SA_EMAIL
    key = store.key("a.png")
    store.put_bytes(key, b"\x89PNG", "image/png")
    assert "X-Goog-Credential=" + SA_EMAIL.replace("@", "%40") in store.presigned_url(key)
    # the run's bucket and prefix win over the block's; GcpCredentials alone needs a gs:// bucket
    store, _ = resolve_store(RunOptions(delivery=DeliveryOptions(bucket="gs://block-bucket/run-prefix"),
                                        blocks=BlockNames(gcp_credentials="e2e-gcs-sa")))
    assert (store.scheme, store.bucket, store.prefix) == ("gs", "block-bucket", "run-prefix")
    assert store.get_bytes(key) == b"\x89PNG"
