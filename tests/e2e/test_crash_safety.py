"""``kill -9`` of ``bananaflow run`` mid-batch, then the same command again (twice at once):
every image is paid for exactly once overall, no object is partial, and the manifests agree
with S3.

The CLI runs as a subprocess against a real Prefect server, the simulator (HTTP, in this
process) and weed mini. The kill lands while the run is provably mid-batch and has no
request open: the simulator's per-minute quota lets 20 of 40 requests through and answers
the next with a 429 whose retry delay pauses the whole run, so the count of images paid
before the crash is known exactly.
"""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pandas as pd
import pytest
from PIL import Image

from bananaflow.landing.claims import CLAIM_SUFFIX
from bananaflow.providers.models import get_model
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer
from tests.e2e.conftest import TEST_API_KEY, products, write_catalog

pytestmark = pytest.mark.e2e

ITEMS, ALLOWED_BEFORE_CRASH = 40, 20


def cli_env(prefect_api: str, s3_server, sim: SimulatorServer, tmp_path) -> dict[str, str]:  # noqa: ANN001
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GEMINI", "GOOGLE_", "OPENAI", "BANANAFLOW"))}
    env.update(s3_server.env())
    env.update(
        PREFECT_API_URL=prefect_api,
        GEMINI_API_KEY=TEST_API_KEY,
        GOOGLE_GEMINI_BASE_URL=sim.base_url,
        BANANAFLOW_SPOOL_DIR=str(tmp_path / "spool"),
        BANANAFLOW_TIMEOUT_S="10",
        BANANAFLOW_CLAIM_LEASE_S="5",  # the killed run's claims end 5 s after their last renewal
    )
    return env


def bananaflow_cmd(catalog, bucket: str) -> list[str]:  # noqa: ANN001
    return [sys.executable, "-m", "bananaflow.cli.main", "run", str(catalog), "--bucket", bucket, "--prefix", "crash",
            "--concurrency", "4", "--no-progress"]


def wait_for(condition, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_kill_9_mid_batch_then_rerun_pays_each_image_once(prefect_api, s3_server, tmp_path):
    catalog = write_catalog(tmp_path / "catalog.csv", products(ITEMS, "CR"))
    config = SimulatorConfig(latency_s=(0.05, 0.15), requests_per_minute=ALLOWED_BEFORE_CRASH)
    with SimulatorServer(config) as sim:
        env = cli_env(prefect_api, s3_server, sim, tmp_path)
        first = subprocess.Popen(bananaflow_cmd(catalog, "crash"), env=env, start_new_session=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            # The 21st request is refused with a ~60 s retry delay: the run pauses mid-batch.
            wait_for(lambda: sim.stats()["by_outcome"].get("429"), 120, "the run to hit the per-minute quota")
            wait_for(lambda: all(r["t_end"] for r in sim.request_log()), 10, "open requests to finish")
            time.sleep(1.0)  # answers received and uploaded
            assert first.poll() is None, first.stdout.read().decode() if first.stdout else ""
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=30)
        assert first.returncode == -signal.SIGKILL
        before = Counter(r["outcome"] for r in sim.request_log())
        assert before["ok"] == ALLOWED_BEFORE_CRASH

        sim.configure(requests_per_minute=None)  # a new minute: the quota is back
        # The same command twice at once (a cron overlap on top of the crash): the two
        # reruns share out the dead run's claims and the remaining work between them.
        reruns = [subprocess.Popen(bananaflow_cmd(catalog, "crash"), env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT) for _ in range(2)]
        for rerun in reruns:
            output = rerun.communicate(timeout=300)[0].decode()
            assert rerun.returncode == 0, output
        log = sim.request_log()

    # Exactly one paid image per product, over both runs; the only other requests are the
    # quota refusals (429s are not billed) that the crashed run was retrying.
    ok_per_prompt = Counter(r["prompt_sha256"] for r in log if r["outcome"] == "ok")
    assert len(ok_per_prompt) == ITEMS and set(ok_per_prompt.values()) == {1}
    assert {r["outcome"] for r in log} == {"ok", "429"}
    assert len(log) == ITEMS + before["429"]

    client = s3_server.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="crash", Prefix="crash/", MaxKeys=1000)["Contents"]]
    images = [k for k in keys if "/runs/" not in k]
    assert not [k for k in images if CLAIM_SUFFIX in k], "the rerun cleaned up the dead run's claims"
    assert len(images) == ITEMS
    expected_size = get_model("gemini-3-pro-image").expected_pixels("1:1", "1K")
    for key in images:  # no partial objects: every one is a whole image of the right size
        obj = client.get_object(Bucket="crash", Key=key)
        body = obj["Body"].read()
        assert len(body) == obj["ContentLength"]
        assert Image.open(io.BytesIO(body)).size == expected_size

    manifests = [k for k in keys if k.endswith("manifest.csv")]
    assert len(manifests) == 2, "the killed run wrote no manifest; each rerun wrote one"
    made_by_rerun: list[str] = []
    judged_by_rerun: list[str] = []
    for manifest in manifests:
        frame = pd.read_csv(io.BytesIO(client.get_object(Bucket="crash", Key=manifest)["Body"].read()), dtype=str)
        assert len(frame) == ITEMS and frame["sku"].is_unique
        assert set(frame["status"]) <= {"succeeded", "skipped_exists"}
        assert set(frame["key"]) == set(images)
        succeeded = frame[frame["status"] == "succeeded"]
        made_by_rerun += list(succeeded.loc[succeeded["attempts"] != "0", "sku"])
        # an answer the crashed run received but had not judged yet is judged by a rerun, not made again
        judged_by_rerun += list(succeeded.loc[succeeded["attempts"] == "0", "sku"])
    # the reruns made exactly the images the crashed run had not, each by one of them
    assert len(made_by_rerun) == len(set(made_by_rerun)) == ITEMS - ALLOWED_BEFORE_CRASH
    assert len(judged_by_rerun) == len(set(judged_by_rerun)) and not set(judged_by_rerun) & set(made_by_rerun)
    assert list((tmp_path / "spool").glob("*/*.bin")) == []
