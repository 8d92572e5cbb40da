"""Batch mode's parts: sizing, JSONL lines, operation parsing, mode choice and estimates,
and the HTTP client against the simulator's real Files and Batch routes."""
from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from dataclasses import replace

import pytest

from bananaflow.batch import api as batch_api
from bananaflow.batch.api import GeminiBatchAPI, status_from_operation
from bananaflow.batch.jsonl import input_file, input_line, read_results
from bananaflow.batch.ledger import BatchJob, job_id_for
from bananaflow.errors import ConfigurationError, ModelNotFound
from bananaflow.planning.batch_sizing import BatchLimits, split_into_batches
from bananaflow.planning.mode import choose_mode, estimate_batch
from bananaflow.planning.work import WorkItem
from bananaflow.providers.base import ImageRequest
from bananaflow.providers.gemini import build_body
from bananaflow.providers.models import get_model
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import Secret
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer
from bananaflow.testing.simulator.gemini_wire import parse_generate_content

PRO = "gemini-3-pro-image"
KEY = "FAKE-BATCH-unit-key-0123456789abcdefghij"


def item(n: int, size: str = "1K", model: str = PRO) -> WorkItem:
    return WorkItem(n, f"SKU-{n}", "main", f"a mug number {n}", model, "1:1", size,
                    f"shop/SKU-{n}/main-{n:08x}", "0" * 64)


def test_batches_are_capped_by_items_and_by_expected_result_bytes() -> None:
    items = [item(i) for i in range(7)]
    assert [len(g) for g in split_into_batches(items, BatchLimits(max_items=3))] == [3, 3, 1]
    big = [item(i, "2K") for i in range(5)]  # ~8 MB of results each
    groups = split_into_batches(big, BatchLimits(max_result_bytes=20_000_000))
    assert [len(g) for g in groups] == [2, 2, 1]
    assert [len(g) for g in split_into_batches([item(0, "4K")], BatchLimits(max_result_bytes=1))] == [1]
    assert split_into_batches(big, BatchLimits(max_result_bytes=20_000_000)) == groups  # deterministic


def test_input_line_is_the_realtime_body_keyed_by_the_items_key_and_the_simulator_accepts_it() -> None:
    one = item(3, "2K")
    line = json.loads(input_line(one))
    assert line["key"] == one.key_stem
    spec = get_model(PRO)
    assert line["request"] == build_body(ImageRequest(one.prompt, PRO, "1:1", "2K"), spec)
    call = parse_generate_content(spec, line["request"])
    assert (call.prompt, call.image_size) == (one.prompt, "2K")
    assert input_file([item(1), item(2)]).count(b"\n") == 2


def test_results_are_read_line_by_line_and_bad_lines_are_reported() -> None:
    data = b'{"key": "a", "response": {"candidates": []}}\nnot json\n\n{"metadata": {"key": "b"}, "error": {"code": 500}}\n'
    lines = list(read_results(io.BytesIO(data)))
    assert [(r.key, r.response is not None, r.error) for r in lines] == [
        ("a", True, None), (None, False, None), ("b", False, {"code": 500})
    ]
    assert "line 2" in lines[1].problem


def test_operation_output_is_read_from_response_or_metadata_and_unknown_states_keep_polling() -> None:
    from_response = status_from_operation({"name": "batches/x", "done": True, "metadata": {
        "state": "BATCH_STATE_SUCCEEDED"}, "response": {"responsesFile": "files/r"}})
    from_metadata = status_from_operation({"name": "batches/x", "done": True, "metadata": {
        "state": "BATCH_STATE_SUCCEEDED", "output": {"responsesFile": "files/m"}}})
    assert (from_response.responses_file, from_metadata.responses_file) == ("files/r", "files/m")
    assert from_response.terminal and from_response.succeeded
    assert not status_from_operation({"metadata": {"state": "BATCH_STATE_SOMETHING_NEW"}, "done": False}).terminal
    failed = status_from_operation({"metadata": {"state": "BATCH_STATE_FAILED"}, "done": True,
                                    "error": {"code": 13, "message": "boom"}})
    assert failed.terminal and not failed.succeeded and failed.error_message == "boom"


def test_auto_mode_takes_batch_only_for_enough_items_and_a_deadline_past_the_window() -> None:
    assert choose_mode("auto", 5000).mode == "batch"
    assert choose_mode("auto", 20).mode == "realtime"
    assert choose_mode("auto", 5000, deadline_hours=6).mode == "realtime"
    assert choose_mode("auto", 5000, deadline_hours=48).mode == "batch"
    assert choose_mode("auto", 5000, provider_kind="openai").mode == "realtime"
    assert choose_mode("realtime", 5000).mode == "realtime"
    with pytest.raises(ConfigurationError, match="native Gemini API"):
        choose_mode("batch", 10, provider_kind="openai")
    with pytest.raises(ConfigurationError, match="unknown"):
        choose_mode("cheap", 10)


def test_estimate_is_half_the_list_price_and_counts_batches() -> None:
    estimate = estimate_batch(1000, PRO, "2K")
    assert estimate.cost_usd == pytest.approx(1000 * 0.134 / 2)
    assert estimate.realtime_cost_usd == pytest.approx(134.0)
    assert estimate.saving_usd == pytest.approx(67.0)
    assert estimate.batches == 8  # 125 2K images fill the 1 GB results cap
    assert estimate.max_hours == 24


def test_job_id_depends_on_the_items_and_model_not_their_order() -> None:
    items = [item(1), item(2)]
    assert job_id_for(items) == job_id_for(items[::-1])
    assert job_id_for(items) != job_id_for([item(1)])
    assert job_id_for(items) != job_id_for([replace(i, model="gemini-3.1-flash-image") for i in items])
    job = BatchJob(job_id_for(items), PRO, items, "run-1", batch_name="batches/abc")
    assert BatchJob.from_json(job.to_json()) == job


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(api_key=KEY, batch_turnaround_s=0.2)) as running:
        yield running


def settings(sim: SimulatorServer, auth_style: str = "header") -> ProviderSettings:
    return ProviderSettings(kind="gemini", base_url=sim.base_url, api_key=Secret(KEY), auth_style=auth_style,
                            model=PRO)


@pytest.mark.parametrize("auth_style", ["header", "query"])
def test_client_uploads_in_chunks_creates_polls_and_downloads(
    sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch, auth_style: str
) -> None:
    sim.reset()
    monkeypatch.setattr(batch_api, "_CHUNK", 100)  # force a multi-chunk resumable upload
    data = input_file([item(1), item(2), item(3)])
    assert len(data) > 200

    async def go() -> list[dict]:
        api = GeminiBatchAPI(settings(sim, auth_style))
        try:
            file_name = await api.upload_jsonl(data, "unit")
            status = await api.create(PRO, file_name, "unit")
            assert status.state == "BATCH_STATE_PENDING" and not status.terminal
            while not status.terminal:
                await asyncio.sleep(0.05)
                status = await api.get(status.name)
            assert status.succeeded and status.request_count == 3
            stream = await api.download(status.responses_file)
            with stream:
                return [json.loads(line) for line in stream]
        finally:
            await api.aclose()

    lines = asyncio.run(go())
    assert sorted(line["key"] for line in lines) == sorted(i.key_stem for i in (item(1), item(2), item(3)))
    assert all("response" in line for line in lines)
    assert sim.batch_stats() == {"batches_created": 1, "files_uploaded": 1, "files_downloaded": 1, "batch_cancels": 0}


def test_client_classifies_errors_like_realtime(sim: SimulatorServer) -> None:
    async def go() -> None:
        api = GeminiBatchAPI(settings(sim))
        try:
            with pytest.raises(ModelNotFound) as caught:
                await api.create("gemini-3-pro-image-preview", "files/nothing", "unit")
            assert KEY not in caught.value.message
        finally:
            await api.aclose()

    asyncio.run(go())
    openai = ProviderSettings(kind="openai", base_url=sim.base_url, api_key=Secret(KEY), auth_style="bearer", model=PRO)
    with pytest.raises(ConfigurationError, match="--mode realtime"):
        GeminiBatchAPI(openai)


def test_cancel_ends_a_batch(sim: SimulatorServer) -> None:
    sim.configure(batch_turnaround_s=3600)

    async def go() -> str:
        api = GeminiBatchAPI(settings(sim))
        try:
            file_name = await api.upload_jsonl(input_file([item(9)]), "unit")
            status = await api.create(PRO, file_name, "unit")
            await api.cancel(status.name)
            return (await api.get(status.name)).state
        finally:
            await api.aclose()

    try:
        assert asyncio.run(go()) == "BATCH_STATE_CANCELLED"
    finally:
        sim.configure(batch_turnaround_s=0.2)


def test_find_pages_through_the_projects_batches(sim: SimulatorServer) -> None:
    sim.reset()

    async def go() -> tuple[str, str | None, object]:
        api = GeminiBatchAPI(settings(sim))
        try:
            made = []
            for n in range(5):
                file_name = await api.upload_jsonl(input_file([item(n)]), f"f{n}")
                made.append((await api.create(PRO, file_name, f"job-{n}")).name)
            found = await api.find("job-0", page_size=2)  # the oldest: on the last page
            missing = await api.find("job-x", page_size=2)
            return made[0], found.name if found else None, missing
        finally:
            await api.aclose()

    first, found, missing = asyncio.run(go())
    assert found == first and missing is None
