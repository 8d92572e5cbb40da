"""Human review end to end on a started Prefect server, real S3 and the simulator: a run with
``--review`` pauses with Prefect's input form, is answered from the terminal (``bananaflow
review``) or the Prefect UI in a real browser, makes again what was sent back with the note,
and publishes exactly what was approved or re-made; a finished run's approvals are published as
a new manifest and write-back beside it; a review that times out publishes what passed."""
from __future__ import annotations

import contextvars
import csv
import io
import json
import threading
import uuid

import pytest

from bananaflow.cli.main import main
from bananaflow.landing.review_log import load_decisions
from bananaflow.landing.review_store import item_stem_of, read_review_marker, review_marker_key
from bananaflow.landing.run_history import latest_manifest_key, load_run_manifest, manifest_keys
from bananaflow.landing.storage import ImageStore
from bananaflow.landing.verdict import NEEDS_REVIEW, REJECTED
from tests.e2e.conftest import products, write_catalog
from tests.e2e.ops.conftest import wait_until
from tests.flow_params import flow_params

pytestmark = pytest.mark.e2e
BUCKET = "ops-review"
PREFIX = "bananaflow"


@pytest.fixture(scope="module")
def review_stack(ops_stack):
    import bananaflow_prefect.tasks.review as review_tasks

    ops_stack.save_blocks(BUCKET, PREFIX, max_in_flight=4)
    before, review_tasks.PAUSE_POLL_S = review_tasks.PAUSE_POLL_S, 1
    try:
        yield ops_stack
    finally:
        review_tasks.PAUSE_POLL_S = before
        ops_stack.simulator.configure(defects={})


def script_defects(stack, **modes: str) -> None:  # noqa: ANN001
    """``TRM001="always"``: that product's images carry a defect the simulator's judge finds
    (``once``: until a request carries corrections). No regenerations by the gate
    (``qa_max_attempts=0``), so a defect leaves the image ``needs_review`` at once."""
    stack.simulator.configure(defects={f"model {sku}": mode for sku, mode in modes.items()})


def store(stack) -> ImageStore:  # noqa: ANN001
    return ImageStore(BUCKET, PREFIX, client=stack.s3.client())


def manifest_rows(s3: ImageStore, key: str) -> list:
    return load_run_manifest(s3, key).rows


def flow_run_named(name: str):  # noqa: ANN201
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))
    return runs[0] if runs else None


def start_run(stack, tmp_path, sku_prefix: str, n: int, **options) -> tuple[str, threading.Thread, dict]:  # noqa: ANN001
    """The catalog flow in a thread of this process (Prefect's settings carried along)."""
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images

    catalog = write_catalog(tmp_path / f"{sku_prefix}.csv", products(n, sku_prefix))
    name = f"review-{sku_prefix.lower()}-{uuid.uuid4().hex[:6]}"
    result: dict = {}

    def go() -> None:
        try:
            result["summary"] = catalog_to_images.with_options(flow_run_name=name)(**flow_params(
                catalog=str(catalog), provider_block="bananaflow-provider", store_block="bananaflow-store",
                limits_block="bananaflow-limits", writeback="merchant", **options))
        except BaseException as exc:  # noqa: BLE001 (reported by the test)
            result["error"] = exc

    thread = threading.Thread(target=contextvars.copy_context().run, args=(go,), daemon=True)
    thread.start()
    return name, thread, result


def wait_paused(name: str):  # noqa: ANN201
    return wait_until(lambda: (r := flow_run_named(name)) and r.state and r.state.is_paused() and r, 120, f"{name} to pause")


def finished(thread: threading.Thread, result: dict) -> dict:
    thread.join(180)
    assert not thread.is_alive(), "the flow did not finish"
    if "error" in result:
        raise result["error"]
    return result["summary"]


def supplemental_ids(s3: ImageStore, uri: str) -> set[str]:
    text = s3.get_bytes(uri.removeprefix(f"s3://{BUCKET}/")).decode()
    return {row["id"] for row in csv.DictReader(io.StringIO(text), delimiter="\t")}


def test_a_paused_run_is_answered_from_the_terminal_and_publishes_exactly_what_was_approved(review_stack, tmp_path, capsys):
    s3 = store(review_stack)
    script_defects(review_stack, TRM001="always", TRM002="once", TRM003="always")
    name, thread, result = start_run(review_stack, tmp_path, "TRM", 5, review="flagged", qa_max_attempts=0)
    wait_paused(name)

    assert main(["review"]) == 0  # the newest paused run: lists what waits, with the judge's reasons
    listing = capsys.readouterr().out
    assert f"{name} (Paused): 3 images wait for review" in listing and listing.count("X-Amz-Signature") == 3
    assert "TRM-000" not in listing and "text_and_labels" in listing
    assert main(["review", name, "--reject", "NOPE"]) == 2  # one clear line, the run still waits
    assert "'NOPE' has no image waiting for review" in capsys.readouterr().err
    assert main(["review", name, "--reject", "TRM-001", "--regenerate", "TRM-002", "--note", "label must read Coffee",
                 "--approve-all"]) == 0
    summary = finished(thread, result)

    assert summary["review"]["decisions"] == {"approve": 1, "reject": 1, "regenerate": 1}
    assert summary["review"]["agreement"]["approved_failed"] >= 1  # TRM-003: approved what the judge failed
    rows = {r.sku: r for r in manifest_rows(s3, latest_manifest_key(s3))}
    assert rows["TRM-001"].status == REJECTED and rows["TRM-001"].key.startswith(f"{PREFIX}/review/")
    assert read_review_marker(s3, item_stem_of(rows["TRM-001"].key)).status == REJECTED
    remade = rows["TRM-002"]  # made again with the note as a correction, judged again, passed
    assert remade.status == "succeeded" and not remade.key.startswith(f"{PREFIX}/review/") and s3.exists(remade.key)
    stages = [(v["stage"], v["passed"]) for v in json.loads(remade.verdicts)]
    assert ("judge", False) in stages and stages[-1] == ("judge", True)
    approved = rows["TRM-003"]
    assert approved.status == "succeeded" and s3.exists(approved.key) and not approved.key.startswith(f"{PREFIX}/review/")
    assert not s3.exists(review_marker_key(item_stem_of(approved.key)))
    assert supplemental_ids(s3, summary["manifest"]["writeback"]) == {"TRM-000", "TRM-002", "TRM-003", "TRM-004"}
    decisions = [d for d in load_decisions(s3, PREFIX) if d.run == name]
    assert len(decisions) == 3 and len({d.who for d in decisions}) == 1 and "@" in decisions[0].who
    assert next(d for d in decisions if d.sku == "TRM-002").note == "label must read Coffee"


def test_a_finished_runs_approvals_are_published_as_a_new_manifest_and_write_back(review_stack, tmp_path, capsys,
                                                                                 monkeypatch):
    """A run whose review timed out (what passed is published, two images stay needs_review),
    answered afterwards from the terminal; the next run of the same catalog makes neither again."""
    s3 = store(review_stack)
    script_defects(review_stack, FIN001="always", FIN002="always")
    name, thread, result = start_run(review_stack, tmp_path, "FIN", 4, review="flagged", qa_max_attempts=0,
                                     review_timeout_hours=0.001)
    summary = finished(thread, result)
    assert summary["review"]["outcome"].startswith("timed out") and flow_run_named(name).state.is_completed()
    assert summary["counts"] == {"succeeded": 2, NEEDS_REVIEW: 2}
    assert supplemental_ids(s3, summary["manifest"]["writeback"]) == {"FIN-000", "FIN-003"}
    stems = {r.sku: item_stem_of(r.key) for r in manifest_rows(s3, latest_manifest_key(s3))}

    assert main(["review", name]) == 0
    assert f"{name} (Completed): 2 images wait for review" in capsys.readouterr().out
    assert main(["review", name, "--approve", "FIN-001", "--reject", "FIN-002"]) == 0
    assert "published 1 approved, 1 rejected" in capsys.readouterr().out
    newest = manifest_keys(s3)[-1]
    assert newest.rsplit("/", 2)[-2].endswith(f"-{name}.review")
    after = {r.sku: r for r in manifest_rows(s3, newest)}
    assert after["FIN-001"].status == "succeeded" and s3.exists(after["FIN-001"].key)
    assert not after["FIN-001"].key.startswith(f"{PREFIX}/review/")
    assert after["FIN-002"].status == REJECTED
    assert supplemental_ids(s3, s3.uri(newest.rsplit("/", 1)[0] + "/merchant_supplemental.tsv")) == {
        "FIN-000", "FIN-001", "FIN-003"}
    assert main(["review", name]) == 0  # the review's manifest is the run's newest: nothing waits now
    assert f"{name} (Completed): 0 images wait for review" in capsys.readouterr().out
    assert not s3.exists(review_marker_key(stems["FIN-001"]))
    marker = read_review_marker(s3, stems["FIN-002"])
    assert marker and marker.status == REJECTED and "@" in marker.decided_by

    for var, value in review_stack.s3.env().items():  # the flow reads the previous manifest with the shell's credentials
        monkeypatch.setenv(var, value)
    sent = len(review_stack.simulator.request_log())
    again = finished(*start_run(review_stack, tmp_path, "FIN", 4, previous_manifest="latest")[1:])
    assert len(review_stack.simulator.request_log()) == sent, "the next run sent requests for approved or rejected images"
    assert again["counts"].get(REJECTED) == 1 and again["counts"].get("skipped_unchanged") == 3
    # a run without review still reports how often people overruled the judge over the last reviews
    assert again["review"]["outcome"] == "off" and again["review"]["agreement"]["approved_failed"] >= 1

def _property(browser, label: str):  # noqa: ANN001, ANN202
    """The form's property whose label starts with ``label`` (the innermost one)."""
    from selenium.webdriver.common.by import By

    scope = "." if hasattr(browser, "parent") and not hasattr(browser, "get") else ""
    return browser.find_element(By.XPATH, f"({scope}//div[contains(concat(' ', normalize-space(@class), ' '), "
                                "' schema-form-property ')][.//span[contains(@class, 'schema-form-property__label') "
                                f"and starts-with(normalize-space(), '{label}')]])[last()]")


def _add_item(browser, label: str):  # noqa: ANN001, ANN202
    from selenium.webdriver.common.by import By

    field = _property(browser, label)
    field.find_element(By.XPATH, ".//button[contains(normalize-space(), 'Add item')]").click()
    return _property(browser, label)


def test_the_prefect_ui_pause_form_rejects_sends_back_with_a_note_and_approves_the_rest(review_stack, tmp_path, chromium):
    from selenium.webdriver.common.by import By

    from tests.e2e.ops.test_observability import SCREENSHOTS, _until

    s3 = store(review_stack)
    script_defects(review_stack, WEB001="always", WEB002="once", WEB003="always")
    name, thread, result = start_run(review_stack, tmp_path, "WEB", 4, review="flagged", qa_max_attempts=0)
    run = wait_paused(name)
    SCREENSHOTS.mkdir(exist_ok=True)
    chromium.get(f"{review_stack.ui_url}/runs/flow-run/{run.id}")
    resume = _until(chromium, lambda b: [e for e in b.find_elements(By.XPATH, "//button[normalize-space()='Resume']")
                                         if e.is_displayed()], "the paused run's Resume button")
    resume[0].click()
    _until(chromium, lambda b: "3 images of 3 products wait for review" in b.find_element(By.TAG_NAME, "body").text,
           "the review page above the form")
    signed = "return [...document.images].filter(i => i.src.includes('X-Amz-Signature') && i.complete && i.naturalWidth > 0).length"
    _until(chromium, lambda b: b.execute_script(signed) >= 3, "the waiting images' thumbnails to load")

    _add_item(chromium, "Reject (SKUs)").find_elements(By.XPATH, ".//textarea | .//input[@type='text']")[-1].send_keys("WEB-001")
    again = _add_item(chromium, "Make again (SKU and note)")
    _property(again, "SKU").find_element(By.XPATH, ".//textarea | .//input[@type='text']").send_keys("WEB-002")
    _property(again, "Note").find_element(By.XPATH, ".//textarea | .//input[@type='text']").send_keys("the handle is missing")
    _property(chromium, "Approve All").find_element(By.CSS_SELECTOR, "label[role='switch']").click()
    _property(chromium, "Your name").find_element(By.TAG_NAME, "textarea").send_keys("Ana in the UI")
    chromium.save_screenshot(str(SCREENSHOTS / "review-form.png"))
    chromium.find_element(By.XPATH, "//div[contains(@class, 'p-modal__footer')]//button[normalize-space()='Submit']").click()
    summary = finished(thread, result)

    assert summary["review"]["decisions"] == {"approve": 1, "reject": 1, "regenerate": 1}
    assert summary["review"]["outcome"] == "decided by Ana in the UI"
    rows = {r.sku: r for r in manifest_rows(s3, latest_manifest_key(s3))}
    assert rows["WEB-001"].status == REJECTED and rows["WEB-002"].status == "succeeded"
    assert json.loads(rows["WEB-002"].verdicts)[-1]["passed"] and rows["WEB-003"].status == "succeeded"
    assert supplemental_ids(s3, summary["manifest"]["writeback"]) == {"WEB-000", "WEB-002", "WEB-003"}
    decisions = {d.sku: d for d in load_decisions(s3, PREFIX) if d.run == name}
    assert decisions["WEB-002"].note == "the handle is missing" and decisions["WEB-001"].who == "Ana in the UI"
