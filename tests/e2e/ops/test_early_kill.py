"""``kill -9`` in the first seconds of a run on a started Prefect server (``prefect server
start``, as the attack used): every answer the
provider had sent more than ``DURABLE_S`` before the kill is durable (in S3 or in the local
spool, found by its prompt hash), and the next run pays for none of them again.

An answer that waits in memory behind the run's other work (S3 look-ups of the next items,
claims, image checks queued on the same threads) is lost to a kill; the lander writes it
to the spool on a thread of its own first, before anything else is done with it.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from bananaflow.landing.object_meta import ObjectMeta
from tests.e2e.conftest import products, write_catalog
from tests.e2e.test_crash_safety import bananaflow_cmd, wait_for

pytestmark = pytest.mark.e2e

ITEMS = 40
#: The most an answer may spend between the provider's last byte and the spool (or S3).
DURABLE_S = 0.5


def _durable_prompts(s3_server, spool) -> set[str]:  # noqa: ANN001
    """Prompt hashes of the images stored in the bucket or waiting in the spool."""
    client = s3_server.client()
    found = set()
    listing = client.list_objects_v2(Bucket="early", Prefix="early/", MaxKeys=1000).get("Contents", [])
    for obj in listing:
        if "/runs/" in obj["Key"] or not obj["Key"].endswith(".png"):
            continue
        found.add(ObjectMeta.decode(client.head_object(Bucket="early", Key=obj["Key"])["Metadata"]).prompt_sha256)
    for path in spool.glob("*/*.json"):
        if path.with_suffix(".bin").exists():
            found.add(ObjectMeta.decode(json.loads(path.read_text())["metadata"]).prompt_sha256)
    return found - {""}


def test_a_kill_in_the_first_seconds_loses_no_answer_received(ops_stack, tmp_path):
    catalog = write_catalog(tmp_path / "catalog.csv", products(ITEMS, "EK"))
    s3_server, sim = ops_stack.s3, ops_stack.simulator
    sim.reset()
    sim.configure(latency_s=(0.4, 0.8))
    env = {**ops_stack.env, "BANANAFLOW_SPOOL_DIR": str(tmp_path / "spool"), "BANANAFLOW_TIMEOUT_S": "10"}
    try:
        cmd = [*bananaflow_cmd(catalog, "early"), "--prefix", "early"]
        first = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            answered = lambda: sorted(r["t_end"] for r in sim.request_log() if r["outcome"] == "ok" and r["t_end"])  # noqa: E731
            wait_for(lambda: len(answered()) >= 5, 120, "the first five answers")
            fifth = answered()[4]
            time.sleep(max(0.0, fifth + DURABLE_S + 0.3 - time.time()))
            assert first.poll() is None, first.stdout.read().decode() if first.stdout else ""
        finally:
            killed_at = time.time()
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=30)
        log = sim.request_log()
        due = {r["prompt_sha256"] for r in log if r["outcome"] == "ok" and r["t_end"] and r["t_end"] <= killed_at - DURABLE_S}
        assert len(due) >= 5
        missing = due - _durable_prompts(s3_server, tmp_path / "spool")
        assert not missing, f"{len(missing)} of {len(due)} answers received before the kill are neither in S3 nor spooled"

        paid_before = len(log)
        rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
        again = {r["prompt_sha256"] for r in sim.request_log()[paid_before:] if r["outcome"] == "ok"}
    finally:
        sim.configure(latency_s=(0.05, 0.15))
    assert not (again & due), f"{len(again & due)} answered images paid again"
