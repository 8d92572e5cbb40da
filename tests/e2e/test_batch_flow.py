"""Batch mode end to end: the simulator's Batch and Files routes + weed mini + a real
Prefect server, driven through the same flow as realtime runs."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
from PIL import Image

from bananaflow.providers.models import get_model
from tests.e2e.conftest import products, write_catalog
from tests.e2e.test_catalog_flow import image_keys, run, s3_client

pytestmark = pytest.mark.e2e

PRO = "gemini-3-pro-image"
FAST_POLL = {"batch_poll_max_s": 0.3}


def manifest(client, bucket: str, summary: dict) -> pd.DataFrame:
    key = summary["manifest"]["parquet"].removeprefix(f"s3://{bucket}/")
    return pd.read_parquet(io.BytesIO(client.get_object(Bucket=bucket, Key=key)["Body"].read()))


def ledger_keys(client, bucket: str, prefix: str, where: str) -> list[str]:
    try:
        resp = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/runs/_batches/{where}/")
    except client.exceptions.NoSuchBucket:  # the run has not created it yet
        return []
    return [obj["Key"] for obj in resp.get("Contents", [])]


def test_batch_run_lands_images_and_classifies_failed_items(prefect_api, s3_env, provider_env, tmp_path):
    sim = provider_env
    sim.configure(batch_turnaround_s=0.5, script={"model BF001": ["500"]}, blocked_words=("counterfeit",))
    rows = products(6, "BF")
    rows[2]["title"] = "Counterfeit designer handbag"
    catalog = write_catalog(tmp_path / "catalog.csv", rows)
    summary = run(catalog=str(catalog), bucket="e2e-batch", prefix="shop", image_size="2K", aspect_ratio="4:5",
                  mode="batch", **FAST_POLL)

    assert summary["counts"] == {"succeeded": 4, "failed": 1, "blocked": 1}
    assert summary["mode"] == "batch"
    assert sim.batch_stats()["batches_created"] == 1
    assert sim.stats()["by_route"].get("generateContent", 0) == 0, "batch mode must not call the realtime route"

    client = s3_client(s3_env)
    expected = get_model(PRO).expected_pixels("4:5", "2K")
    stored = image_keys(client, "e2e-batch", "shop")
    markers = [key for key in stored if key.endswith("~blocked.json")]
    assert [m.split("/")[1] for m in markers] == ["BF-002"], "the billed block is remembered for the next run"
    keys = [key for key in stored if key not in markers]
    assert len(keys) == 4
    for key in keys:
        obj = client.get_object(Bucket="e2e-batch", Key=key)
        assert Image.open(io.BytesIO(obj["Body"].read())).size == expected
        assert obj["Metadata"]["bananaflow-mode"] == "batch"

    frame = manifest(client, "e2e-batch", summary)
    assert set(frame["mode"]) == {"batch"}
    (batch_name,) = set(frame["batch_name"])
    assert batch_name.startswith("batches/")
    by_sku = frame.set_index("sku")
    assert by_sku.loc["BF-001", "status"] == "failed" and by_sku.loc["BF-001", "error_class"] == "ServerError"
    assert by_sku.loc["BF-002", "status"] == "blocked" and by_sku.loc["BF-002", "error_class"] == "ContentBlocked"

    spec = get_model(PRO)
    made = frame[frame["status"] == "succeeded"]
    for row in made.itertuples():
        full = spec.cost_from_usage(prompt_tokens=row.prompt_tokens, image_tokens=row.image_tokens,
                                    other_output_tokens=row.output_tokens - row.image_tokens)
        # half price for the image; the quality gate's judge call (realtime, full price) on top
        assert row.judge_cost_usd > 0 and json.loads(row.verdicts)[-1]["passed"]
        assert row.cost_usd - row.judge_cost_usd == pytest.approx(full / 2, abs=2e-6)
        assert row.cost_usd < spec.list_price("2K") / 2 + 0.01
    assert summary["cost_usd"] == pytest.approx(made["cost_usd"].sum(), abs=1e-3)
    assert ledger_keys(client, "e2e-batch", "shop", "open") == []
    assert len(ledger_keys(client, "e2e-batch", "shop", "closed")) == 1


def test_large_catalog_runs_several_batches_in_parallel(prefect_api, s3_env, provider_env, tmp_path):
    sim = provider_env
    sim.configure(batch_turnaround_s=1.0)
    catalog = write_catalog(tmp_path / "catalog.csv", products(7, "PB"))
    t0 = time.monotonic()
    summary = run(catalog=str(catalog), bucket="e2e-batch-par", mode="batch", batch_max_items=3, **FAST_POLL)
    elapsed = time.monotonic() - t0
    assert summary["counts"] == {"succeeded": 7}
    assert sim.batch_stats()["batches_created"] == 3
    frame = manifest(s3_client(s3_env), "e2e-batch-par", summary)
    assert sorted(frame.groupby("batch_name").size().tolist()) == [1, 3, 3]
    assert elapsed < 3 * 1.0 + 20, "batches wait side by side, not one after another"

    again = run(catalog=str(catalog), bucket="e2e-batch-par", mode="batch", **FAST_POLL)
    assert again["counts"] == {"skipped_exists": 7}
    assert sim.batch_stats()["batches_created"] == 3, "nothing to make: no new batch"


def test_expired_batch_defers_its_items_for_a_later_run(prefect_api, s3_env, provider_env, tmp_path):
    sim = provider_env
    sim.configure(batch_turnaround_s=0.3, batch_outcome="expired")
    catalog = write_catalog(tmp_path / "catalog.csv", products(3, "EX"))
    summary = run(catalog=str(catalog), bucket="e2e-batch-exp", mode="batch", **FAST_POLL)
    assert summary["counts"] == {"deferred": 3}
    assert not summary["ok"]
    assert {f["error_class"] for f in summary["failures"]} == {"BatchNotCompleted"}
    assert "BATCH_STATE_EXPIRED" in summary["failures"][0]["error_message"]
    client = s3_client(s3_env)
    frame = manifest(client, "e2e-batch-exp", summary)
    assert set(frame["mode"]) == {"batch"} and set(frame["status"]) == {"deferred"}
    assert frame["batch_name"].str.startswith("batches/").all()
    assert ledger_keys(client, "e2e-batch-exp", "bananaflow", "open") == []

    retry = run(catalog=str(catalog), bucket="e2e-batch-exp", mode="realtime")
    assert retry["counts"] == {"succeeded": 3}
    assert set(manifest(client, "e2e-batch-exp", retry)["mode"]) == {"realtime"}


_CRASHING_RUN = textwrap.dedent(
    """
    import json, sys
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images
    from tests.flow_params import flow_params
    catalog_to_images(**flow_params(**json.loads(sys.argv[1])))
    """
)


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_crash_while_polling_then_resume_creates_no_second_batch(prefect_api, s3_env, provider_env, tmp_path):
    sim = provider_env
    sim.configure(batch_turnaround_s=3600)  # the batch will not end while the first process lives
    catalog = write_catalog(tmp_path / "catalog.csv", products(4, "CR"))
    params = dict(catalog=str(catalog), bucket="e2e-batch-crash", mode="batch", **FAST_POLL)
    client = s3_client(s3_env)
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_LOGGING_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-c", _CRASHING_RUN, json.dumps(params)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        def recorded() -> list[dict]:
            if proc.poll() is not None:
                raise AssertionError(f"the first run ended on its own: {proc.stderr.read().decode()[-2000:]}")
            keys = ledger_keys(client, "e2e-batch-crash", "bananaflow", "open")
            records = [json.loads(client.get_object(Bucket="e2e-batch-crash", Key=k)["Body"].read()) for k in keys]
            return [r for r in records if r["batch_name"]]

        _wait_for(lambda: recorded(), 120, "the first run to create and record its batch")
        polls_before = sim.batch_stats()
        time.sleep(1.0)  # it is polling now
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
    (record,) = recorded_after = [
        json.loads(client.get_object(Bucket="e2e-batch-crash", Key=k)["Body"].read())
        for k in ledger_keys(client, "e2e-batch-crash", "bananaflow", "open")
    ]
    assert polls_before["batches_created"] == 1 and recorded_after
    assert image_keys(client, "e2e-batch-crash", "bananaflow") == []

    sim.configure(batch_turnaround_s=0.0)  # Google finishes the batch while nobody watches
    summary = run(**params)
    assert summary["counts"] == {"succeeded": 4}
    assert sim.batch_stats()["batches_created"] == 1, "the resumed run polled the recorded batch, it created none"
    frame = manifest(client, "e2e-batch-crash", summary)
    assert set(frame["batch_name"]) == {record["batch_name"]}
    assert set(frame["mode"]) == {"batch"}
    assert ledger_keys(client, "e2e-batch-crash", "bananaflow", "open") == []


def test_cli_mode_flag(prefect_api, s3_env, provider_env, tmp_path, capsys):
    from bananaflow.cli.main import EXIT_OK, main

    sim = provider_env
    sim.configure(batch_turnaround_s=0.3)
    catalog = write_catalog(tmp_path / "catalog.csv", products(2, "CL"))
    common = [str(catalog), "--bucket", "e2e-batch-cli", "--no-progress", "--batch-poll-max", "0.3"]
    assert main(["run", *common, "--mode", "batch"]) == EXIT_OK
    assert "at the Batch-mode price" in capsys.readouterr().out
    assert sim.batch_stats()["batches_created"] == 1

    more = write_catalog(tmp_path / "more.csv", products(3, "CM"))
    assert main(["run", str(more), *common[1:], "--mode", "auto"]) == EXIT_OK  # 3 images: below the threshold
    assert "at list price" in capsys.readouterr().out
    assert sim.batch_stats()["batches_created"] == 1
    assert sim.stats()["by_route"]["generateContent"] == 3


def test_the_job_spec_can_choose_batch_mode(prefect_api, s3_env, provider_env, tmp_path):
    """`run: {mode: batch}` in a job spec sends the job through Batch mode without a flag."""
    sim = provider_env
    sim.configure(batch_turnaround_s=0.3)
    catalog = write_catalog(tmp_path / "catalog.csv", products(3, "JS"))
    job = {"variants": [{"name": "main", "prompt": "Studio photo of {{ title }} on white"}], "run": {"mode": "batch"}}
    summary = run(catalog=str(catalog), bucket="e2e-batch-spec", job=job, **FAST_POLL)
    assert summary["mode"] == "batch"
    assert summary["counts"] == {"succeeded": 3}
    assert sim.batch_stats()["batches_created"] == 1
    assert sim.stats()["by_route"].get("generateContent", 0) == 0


def test_a_wave_is_planned_as_a_stream_of_chunks(prefect_api, s3_env, provider_env, tmp_path, monkeypatch):
    """The flow reads a wave from the work store PLAN_CHUNK items at a time and submits each
    chunk's batches as it goes; an item a recorded batch holds is still not sent twice."""
    import bananaflow_prefect.tasks.batch as batch_tasks

    sim = provider_env
    sim.configure(batch_turnaround_s=0.3)
    monkeypatch.setattr(batch_tasks, "PLAN_CHUNK", 2)
    seen: list[int] = []
    real_chunks = batch_tasks._chunks

    def counting(items, size):
        for chunk in real_chunks(items, size):
            seen.append(len(chunk))
            yield chunk

    monkeypatch.setattr(batch_tasks, "_chunks", counting)
    catalog = write_catalog(tmp_path / "catalog.csv", products(5, "ST"))
    summary = run(catalog=str(catalog), bucket="e2e-batch-stream", mode="batch", **FAST_POLL)
    assert summary["counts"] == {"succeeded": 5}
    assert seen == [2, 2, 1]
    assert sim.batch_stats()["batches_created"] == 3, "one batch per planned chunk"
    frame = manifest(s3_client(s3_env), "e2e-batch-stream", summary)
    assert sorted(frame.groupby("batch_name").size().tolist()) == [1, 2, 2]
