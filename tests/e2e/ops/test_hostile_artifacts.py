"""What a run shows of a hostile catalog, and of credentials inside URLs, on a started
Prefect server: SKUs, titles and photo links carrying ``# heading``, ``[phish](...)``,
``![x](outside)``, ``<img src=outside>`` and a ``\\r``; the provider's base URL, the Prefect
API and UI URLs and a photo link carrying ``user:password@`` and ``?password=``.

The artifacts are read back from Prefect's API (no Markdown of the catalog's survives
unescaped, no credential anywhere, nor in the run's logs or the manifests read back from
S3) and rendered in Chromium: no injected heading, no link, no request to the outside host
(the browser's resource entries and a local "outside" server that records every hit), the
tables' rows intact and the values shown as the characters they are."""
from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pytest
from PIL import Image
from pydantic import SecretStr

from tests.e2e.conftest import TEST_API_KEY, write_catalog
from tests.flow_params import flow_params

pytestmark = pytest.mark.e2e
BUCKET = "ops-hostile-artifacts"
#: Credentials that must appear nowhere a run writes or shows (none is registered as a secret).
USER_PW, QUERY_PW, REF_PW = "UrlPw-q8Zr41", "QueryPw-k2Vd90", "RefPw-m5Tx07"
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts"


class _Outside(BaseHTTPRequestHandler):
    """The attacker's host: records every request a reviewer's browser would make to it."""

    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("content-type", "image/png")
        self.end_headers()
        buf = io.BytesIO()
        Image.new("RGB", (4, 4), "red").save(buf, "PNG")
        self.wfile.write(buf.getvalue())

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def outside() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Outside)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _hostile(outside: str) -> dict[str, str]:
    """name -> a value carrying one kind of Markdown/HTML injection."""
    return {
        "heading": "# INJECTED-HEADING",
        "link": f"LINK [phish](http://{outside}/phish)",
        "image": f"IMG ![x](http://{outside}/md-image.png)",
        "html": f"HTML <img src=http://{outside}/html-image.png>",
        "row": "CR-SKU\r| injected | row |",
    }


def _artifacts(flow_run_id) -> dict:  # noqa: ANN001
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {a.key: a for a in found if a.key}


@pytest.fixture(scope="module")
def hostile_run(ops_stack, outside, tmp_path_factory):
    """One run of the hostile catalog: each injection as a SKU made (gallery) and as a SKU
    refused by the safety filter (summary and failures table), and a photo link with
    Markdown and a password in it (its error quotes it); the provider's base URL and the
    Prefect API/UI URLs carry credentials."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_UI_URL, temporary_settings

    from bananaflow_prefect.blocks import ImageProviderBlock
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images
    from tests.e2e.conftest import prefect_calls_go_to

    ops_stack.save_blocks(BUCKET, max_in_flight=2)
    host = ops_stack.simulator.base_url.removeprefix("http://")
    ImageProviderBlock(kind="gemini", base_url=f"http://relay:{USER_PW}@{host}", api_key=SecretStr(TEST_API_KEY)).save(
        "hostile-provider", overwrite=True)
    shop = tmp_path_factory.mktemp("hostile-shop")
    (shop / "photos").mkdir()
    Image.new("RGB", (64, 64), "white").save(shop / "photos" / "mug.png")
    rows = []
    for name, value in _hostile(outside).items():
        rows.append({"sku": value, "title": f"Mug {value}", "image_link": "photos/mug.png"})
        rows.append({"sku": f"{value} B", "title": f"Counterfeit {name} mug", "image_link": "photos/mug.png"})
    rows.append({"sku": "PHOTO-LINK", "title": "Mug with a bad photo",
                 "image_link": f"http://refuser:{REF_PW}@10.0.0.1/[phish](http://{outside}/ref)/x.png"})
    catalog = write_catalog(shop / "catalog.csv", rows)
    (shop / "main.j2").write_text("Studio photo of {{ title }} on pure white")
    (shop / "job.yaml").write_text('variants:\n  - {name: main, template: main.j2, reference: true}\n')
    name = f"hostile-{uuid.uuid4().hex[:8]}"
    api = ops_stack.api_url.replace("http://", f"http://admin:{USER_PW}@")
    ui = ops_stack.ui_url.replace("http://", f"http://admin:{USER_PW}@") + f"?password={QUERY_PW}"
    sim = ops_stack.simulator
    sim.configure(blocked_words=("counterfeit",))
    try:
        with prefect_calls_go_to(api), temporary_settings(updates={PREFECT_UI_URL: ui}):
            summary = catalog_to_images.with_options(flow_run_name=name)(**flow_params(
                catalog=str(catalog), job=str(shop / "job.yaml"), provider_block="hostile-provider",
                store_block="bananaflow-store", limits_block="bananaflow-limits",
            ))
    finally:
        sim.configure(blocked_words=())
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

        (run,) = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))
    return run, summary


def test_artifacts_read_back_from_prefect_carry_no_markdown_of_the_catalog(hostile_run):
    run, summary = hostile_run
    assert summary["counts"] == {"succeeded": 5, "blocked": 5, "failed": 1}, summary["counts"]
    artifacts = _artifacts(run.id)
    assert {"bananaflow-summary", "bananaflow-failures", "bananaflow-gallery"} <= set(artifacts)
    for key in ("bananaflow-summary", "bananaflow-gallery"):
        markdown = artifacts[key].data
        assert "\r" not in markdown and "<img" not in markdown and "[phish](" not in markdown and "![x](" not in markdown
        assert not [line for line in markdown.splitlines() if "INJECTED" in line and line.lstrip().startswith("#")]
    table = json.loads(artifacts["bananaflow-failures"].data)
    assert len(table) == 6
    cells = [value for row in table for value in row.values()]
    assert not [c for c in cells if "\r" in c or "\n" in c or "<img" in c or "[phish](" in c or "![x](" in c
                or c.lstrip().startswith("#")]
    # the summary's failures table: one line per failure, six cells each
    rows = [line for line in artifacts["bananaflow-summary"].data.splitlines() if line.startswith("| ") and "logs" in line]
    assert len(rows) == 6 and all(line.replace("\\|", "").count("|") == 7 for line in rows), rows


def test_no_credential_in_artifacts_logs_results_or_manifests(hostile_run, s3_env):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    from bananaflow.landing.storage import ImageStore

    run, summary = hostile_run
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
    assert len(logs) > 3
    store = ImageStore(BUCKET)
    csv_text = store.get_bytes(summary["manifest"]["csv"].removeprefix(f"s3://{BUCKET}/")).decode()
    parquet = pd.read_parquet(io.BytesIO(store.get_bytes(summary["manifest"]["parquet"].removeprefix(f"s3://{BUCKET}/"))))
    shown = {
        "artifacts": "\n".join(f"{a.data}\n{a.description}" for a in _artifacts(run.id).values()),
        "logs": "\n".join(log.message for log in logs),
        "flow result": json.dumps(summary, default=str),
        "manifest.csv": csv_text,
        "manifest.parquet": parquet.to_csv(),
    }
    for where, text in shown.items():
        for secret in (USER_PW, QUERY_PW, REF_PW):
            assert secret not in text, f"{secret} in the {where}"
    failure = next(f for f in summary["failures"] if f["sku"] == "PHOTO-LINK")
    assert "http://***@10.0.0.1/" in failure["error_message"]  # still says which link
    assert "PHOTO-LINK" in csv_text and "http://***@10.0.0.1/" in csv_text
    assert all(f["task_run_url"].startswith("http://***@127.0.0.1:") for f in summary["failures"] if f["task_run_url"])


_PAGE = """
const tables = [...document.querySelectorAll('table')].map(t => [...t.querySelectorAll('tr')]
    .map(r => r.querySelectorAll('td,th').length));
return {
  headings: [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map(h => h.textContent),
  links: [...document.querySelectorAll('a')].map(a => a.href),
  images: [...document.images].map(i => i.src),
  resources: performance.getEntriesByType('resource').map(e => e.name),
  tables: tables,
  text: document.body.innerText,
};
"""


def _render(browser, url: str, ready: str, shot: str) -> dict:  # noqa: ANN001
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    try:
        WebDriverWait(browser, 60, poll_frequency=0.5).until(
            lambda b: ready in b.find_element(By.TAG_NAME, "body").text)
    except TimeoutException:
        browser.save_screenshot(str(SCREENSHOTS / f"FAILED-{shot}"))
        pytest.fail(f"{url} never showed {ready!r}:\n" + browser.find_element(By.TAG_NAME, "body").text[:2000])
    browser.execute_script("return new Promise(r => setTimeout(r, 1500))")  # images of the page requested
    browser.save_screenshot(str(SCREENSHOTS / shot))
    return browser.execute_script(_PAGE)


def test_the_artifacts_render_as_text_in_the_prefect_ui(hostile_run, ops_stack, outside, chromium):
    run, summary = hostile_run
    SCREENSHOTS.mkdir(exist_ok=True)
    artifacts = _artifacts(run.id)
    values = _hostile(outside)
    pages = {
        key: _render(chromium, f"{ops_stack.ui_url}/artifacts/artifact/{artifacts[key].id}", ready, f"hostile-{key}.png")
        for key, ready in (("bananaflow-summary", "CR-SKU"), ("bananaflow-failures", "CR-SKU"),
                           ("bananaflow-gallery", "CR-SKU"))
    }
    for key, page in pages.items():
        assert not [h for h in page["headings"] if "INJECTED" in h], (key, page["headings"])
        for kind in ("links", "images", "resources"):
            assert not [u for u in page[kind] if urlsplit(u).netloc == outside], (key, kind, page[kind])
        for table in page["tables"]:  # every row has its header's cells: no row broken out of
            assert len(set(table)) == 1, (key, table)
        # each value shows as the characters it is (the \r as a space)
        for value in values.values():
            assert value.replace("\r", " ") in page["text"], (key, value, [ln for ln in page["text"].splitlines() if "phish" in ln or "SKU" in ln or "HTML" in ln])
    assert _Outside.hits == []
    (failures_table,) = [t for t in pages["bananaflow-failures"]["tables"] if len(t) > 1]
    assert len(failures_table) == 1 + 6
    loaded = ("return [...document.images].filter(i => i.src.includes('X-Amz-Signature') && i.complete"
              " && i.naturalWidth > 0).length")
    chromium.get(f"{ops_stack.ui_url}/artifacts/artifact/{artifacts['bananaflow-gallery'].id}")
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(chromium, 60, poll_frequency=0.5).until(lambda b: b.execute_script(loaded) >= 5)
    assert _Outside.hits == []
