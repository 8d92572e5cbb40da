"""S3 goes away mid-run (weed mini stopped): images already paid for wait in the local
spool, the summary says so, and the next run uploads them instead of paying again."""
from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter

import pytest

from bananaflow.devstack.local_s3 import LocalS3Server
from bananaflow.errors import ConfigurationError
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer
from tests.e2e.conftest import TEST_API_KEY, products, write_catalog
from tests.flow_params import flow_params

pytestmark = pytest.mark.e2e

ITEMS = 24


def image_keys(server: LocalS3Server, bucket: str) -> list[str]:
    resp = server.client().list_objects_v2(Bucket=bucket, Prefix="outage/", MaxKeys=1000)
    return [o["Key"] for o in resp.get("Contents", []) if "/runs/" not in o["Key"] and "~" not in o["Key"]]


def use(server: LocalS3Server, monkeypatch) -> None:  # noqa: ANN001
    """Point bananaflow at ``server`` once its filer answers bucket calls (a fresh weed mini
    answers list_buckets a moment before it can create or head a bucket)."""
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    client, deadline = server.client(), time.monotonic() + 30
    while True:
        try:
            client.head_bucket(Bucket="outage")
            return
        except Exception as exc:  # noqa: BLE001
            if "404" in str(exc) or "Not Found" in str(exc):
                with contextlib.suppress(Exception):  # not ready yet, or made by the flow meanwhile
                    client.create_bucket(Bucket="outage")
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def restart(state_dir, port: int, secret: str) -> LocalS3Server:  # noqa: ANN001
    """The same server again, once the old process has let go of its ports."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return LocalS3Server(state_dir, s3_port=port, secret_key=secret).start()
        except ConfigurationError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_s3_down_mid_run_spools_paid_images_and_the_next_run_uploads_them(prefect_api, tmp_path, monkeypatch):
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images

    monkeypatch.setenv("GEMINI_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("BANANAFLOW_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("BANANAFLOW_SPOOL_MAX_MB", "64")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # fail fast while S3 is away
    for var in ("GOOGLE_API_KEY", "OPENAI_API_KEY", "BANANAFLOW_PROVIDER", "BANANAFLOW_AUTH_STYLE"):
        monkeypatch.delenv(var, raising=False)
    catalog = write_catalog(tmp_path / "catalog.csv", products(ITEMS, "S3D"))
    params = dict(catalog=str(catalog), bucket="outage", prefix="outage", concurrency=2)

    s3 = LocalS3Server(tmp_path / "weed").start()
    port, secret = s3.ports["s3"], s3.secret_key.reveal()
    try:
        use(s3, monkeypatch)
        with SimulatorServer(SimulatorConfig(latency_s=(0.2, 0.3))) as sim:
            monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", sim.base_url)
            result: dict = {}
            runner = threading.Thread(target=lambda: result.update(catalog_to_images(**flow_params(**params))))
            runner.start()
            deadline = time.monotonic() + 120
            while len(image_keys(s3, "outage")) < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            s3.stop()  # S3 is gone with images still being generated
            runner.join(timeout=240)
            assert not runner.is_alive(), "the run must end while S3 is down"
            paid_first = sim.stats()["by_outcome"].get("ok", 0)

            counts = result["counts"]
            assert sum(counts.values()) == ITEMS == result["total"]
            assert counts.get("spooled", 0) >= 1, counts
            assert set(counts) <= {"succeeded", "spooled", "failed"}
            assert {f["error_class"] for f in result["failures"]} == {"StorageError"}
            spool = result["spool"]
            assert spool["pending"] == counts["spooled"] and spool["bytes"] > 0
            assert spool["max_bytes"] == 64 * 1024 * 1024
            assert not result["ok"]
            # the manifest could not go to S3, so it was kept locally, and says the same
            assert not result["manifest"]["csv"].startswith("s3://")
            assert len(list((tmp_path / "spool" / "outage").glob("*.bin"))) == counts["spooled"]

            # S3 is back (same data, same port): the next run uploads, generates the rest
            s3 = restart(tmp_path / "weed", port, secret)
            use(s3, monkeypatch)
            second = catalog_to_images(**flow_params(**params))
            log = sim.request_log()

        assert second["ok"], second["failures"]
        assert second["spool"]["uploaded"] == counts["spooled"] and second["spool"]["pending"] == 0
        assert Counter(second["counts"])["failed"] == 0
        assert len(image_keys(s3, "outage")) == ITEMS
        listing = s3.client().list_objects_v2(Bucket="outage", Prefix="outage/", MaxKeys=1000).get("Contents", [])
        assert [o["Key"] for o in listing if "~claim" in o["Key"]] == [], "claims go once their image is safe"
        # nothing paid twice: one generated image per product over both runs
        ok_per_prompt = Counter(r["prompt_sha256"] for r in log if r["outcome"] == "ok")
        assert len(ok_per_prompt) == ITEMS and set(ok_per_prompt.values()) == {1}
        assert paid_first == counts.get("succeeded", 0) + counts["spooled"]
    finally:
        s3.stop()
