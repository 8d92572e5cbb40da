"""What a person sees of a run in Prefect: a progress artifact that moves, the summary,
the failures table, a gallery of thumbnails behind presigned URLs, task runs named by the
range of products they hold (and `bananaflow find` for one product), and logs without secrets. Run through blocks on a started server."""
from __future__ import annotations

import contextvars
import io
import json
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import TEST_API_KEY, products, write_catalog
from tests.flow_params import flow_params

pytestmark = pytest.mark.e2e
BUCKET = "ops-observe"
N_ITEMS = 36


def _artifacts(flow_run_id, key: str | None = None) -> list:  # noqa: ANN001
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    filt = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
    if key:
        filt.key = ArtifactFilterKey(any_=[key])
    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=filt)


def _flow_run_named(name: str):  # noqa: ANN202
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))
    return runs[0] if runs else None


@pytest.fixture(scope="module")
def finished_run(ops_stack, tmp_path_factory):
    """One catalog run (one product refused by the safety filter), with the progress
    artifact sampled from another thread while it ran."""
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images

    ops_stack.save_blocks(BUCKET, max_in_flight=2)
    sim = ops_stack.simulator
    sim.configure(latency_s=(0.3, 0.5), blocked_words=("counterfeit",))
    rows = products(N_ITEMS, "OBS")
    rows[7]["title"] = "Counterfeit designer mug"
    catalog = write_catalog(tmp_path_factory.mktemp("observe") / "catalog.csv", rows)
    name = f"observe-{uuid.uuid4().hex[:8]}"
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        run = None
        while not stop.is_set():
            run = run or _flow_run_named(name)
            if run:
                found = _artifacts(run.id, "bananaflow-progress")
                if found:
                    samples.append(float(found[0].data))
            time.sleep(0.2)

    # Prefect's settings (our server's URL) live in a context variable: carry it into the thread
    sampler = threading.Thread(target=contextvars.copy_context().run, args=(sample,), daemon=True)
    sampler.start()
    try:
        summary = catalog_to_images.with_options(flow_run_name=name)(**flow_params(
            catalog=str(catalog), provider_block="bananaflow-provider", store_block="bananaflow-store",
            limits_block="bananaflow-limits",
        ))
    finally:
        stop.set()
        sampler.join(10)
        sim.configure(latency_s=(0.05, 0.15), blocked_words=())
    return _flow_run_named(name), summary, samples


def test_progress_artifact_moves_while_items_complete(finished_run):
    run, summary, samples = finished_run
    assert summary["counts"] == {"succeeded": N_ITEMS - 1, "blocked": 1}
    moving = sorted({s for s in samples if 0 < s < 100})
    assert len(moving) >= 2, f"progress seen while running: {samples}"
    assert samples == sorted(samples), "progress never goes backwards"
    (final,) = _artifacts(run.id, "bananaflow-progress")
    assert float(final.data) == 100.0
    assert final.description.startswith(f"{N_ITEMS} of {N_ITEMS} images")


def test_summary_failures_and_gallery_artifacts(finished_run, ops_stack):
    run, summary, _ = finished_run
    (md,) = _artifacts(run.id, "bananaflow-summary")
    assert f"| succeeded | {N_ITEMS - 1} |" in md.data and "| blocked | 1 |" in md.data
    assert "latency p50/p95" in md.data and "images/min" in md.data and "cost at list price" in md.data

    (failures,) = _artifacts(run.id, "bananaflow-failures")
    table = json.loads(failures.data)
    assert [(row["sku"], row["error_class"]) for row in table] == [("OBS-007", "ContentBlocked")]

    (gallery,) = _artifacts(run.id, "bananaflow-gallery")
    thumbs = [part.split(")")[0] for part in gallery.data.split("![")[1:]]
    urls = [t.split("](", 1)[1] for t in thumbs]
    assert len(urls) == N_ITEMS - 1  # every image (fewer than the gallery's limit), not the blocked one
    for url in urls[:5]:
        assert "X-Amz-Signature=" in url and "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
        assert ops_stack.s3.secret_key.reveal() not in url
        resp = httpx.get(url, timeout=30)  # no credentials: the URL alone opens it
        assert resp.status_code == 200 and resp.headers["content-type"] == "image/jpeg"
        assert max(Image.open(io.BytesIO(resp.content)).size) <= 256


def _chunk_task_runs(flow_run_id) -> list:  # noqa: ANN001
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return [t for t in tasks if t.task_key.startswith("generate_images")]


def test_task_runs_are_named_by_the_range_of_products_they_hold(finished_run):
    run, _, _ = finished_run
    chunks = _chunk_task_runs(run.id)
    assert len(chunks) == 4 and all(t.state.is_completed() for t in chunks)
    spans = sorted(tuple(t.name.split(" · ")[0].split(" … ")) for t in chunks)
    # SKU-ordered chunks: contiguous ranges that together cover every product once
    assert spans == [("OBS-000", "OBS-008"), ("OBS-009", "OBS-017"), ("OBS-018", "OBS-026"), ("OBS-027", "OBS-035")]
    assert all(t.name.endswith(("· 9 images (1/4)", "· 9 images (2/4)", "· 9 images (3/4)", "· 9 images (4/4)")) for t in chunks)


def test_one_product_leads_to_the_task_run_that_made_it(finished_run, ops_stack):
    """A product in the middle of a chunk: `bananaflow find` links its task run, and the
    failures table links the blocked product's."""
    import subprocess
    import sys

    run, _, _ = finished_run
    by_id = {str(t.id): t for t in _chunk_task_runs(run.id)}
    out = subprocess.run(
        [sys.executable, "-m", "bananaflow.cli.main", "find", "OBS-013", "--bucket", BUCKET],
        env=ops_stack.env, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (line,) = [ln for ln in out.stdout.splitlines() if "OBS-013" in ln or "task run" in ln]
    assert " main  succeeded  s3://ops-observe/" in line
    task_run_id = line.rsplit("/runs/task-run/", 1)[1].strip()
    assert line.split("task run ")[1].startswith(ops_stack.ui_url)
    assert by_id[task_run_id].name.startswith("OBS-009 … OBS-017")

    (failures,) = _artifacts(run.id, "bananaflow-failures")
    (blocked,) = json.loads(failures.data)
    assert by_id[blocked["task_run_id"]].name.startswith("OBS-000 … OBS-008")
    assert blocked["task_run_url"] == f"{ops_stack.ui_url}/runs/task-run/{blocked['task_run_id']}"
    (md,) = _artifacts(run.id, "bananaflow-summary")
    assert f"[logs]({blocked['task_run_url']})" in md.data


def test_logs_and_artifacts_carry_no_secret(finished_run, ops_stack):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    run, _, _ = finished_run
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
    assert len(logs) > 3
    text = "\n".join(log.message for log in logs) + "\n".join(str(a.data) for a in _artifacts(run.id))
    for secret in (TEST_API_KEY, ops_stack.s3.secret_key.reveal()):
        assert secret not in text


#: Where the UI test keeps its screenshots (CI can collect the folder).
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts"


def _until(browser, condition, what: str, timeout_s: float = 60):  # noqa: ANN001, ANN202
    """Wait for ``condition``; on timeout keep a screenshot and fail with the page's text."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(browser, timeout_s, poll_frequency=0.5).until(condition)
    except TimeoutException:
        browser.save_screenshot(str(SCREENSHOTS / "FAILED.png"))
        pytest.fail(f"timed out waiting for {what}; the page said:\n" + browser.find_element(By.TAG_NAME, "body").text[:2000])


def test_the_finished_run_shows_its_artifacts_in_the_prefect_ui(finished_run, ops_stack, chromium):
    from selenium.webdriver.common.by import By

    run, _, _ = finished_run
    SCREENSHOTS.mkdir(exist_ok=True)
    chromium.get(f"{ops_stack.ui_url}/runs/flow-run/{run.id}")
    tabs = _until(
        chromium,
        lambda b: [e for e in b.find_elements(By.XPATH, "//*[normalize-space()='Artifacts']") if e.is_displayed()],
        "the flow run page's Artifacts tab",
    )
    tabs[-1].click()
    keys = ("bananaflow-summary", "bananaflow-failures", "bananaflow-gallery", "bananaflow-progress")
    body = lambda b: b.find_element(By.TAG_NAME, "body").text  # noqa: E731
    _until(chromium, lambda b: all(key in body(b) for key in keys), "the four artifacts on the Artifacts tab")
    assert run.name in body(chromium)
    chromium.save_screenshot(str(SCREENSHOTS / "flow-run-artifacts.png"))

    # the gallery artifact's own page renders the thumbnails from their presigned URLs
    (gallery,) = _artifacts(run.id, "bananaflow-gallery")
    chromium.get(f"{ops_stack.ui_url}/artifacts/artifact/{gallery.id}")
    thumbnails = (
        "return [...document.images].filter(i => i.src.includes('X-Amz-Signature') && i.complete"
        " && i.naturalWidth > 0).length"
    )
    _until(chromium, lambda b: b.execute_script(thumbnails) >= N_ITEMS - 1, "the gallery's thumbnails to load")
    chromium.save_screenshot(str(SCREENSHOTS / "gallery.png"))
    assert (SCREENSHOTS / "gallery.png").stat().st_size > 10_000
