"""The official ``google-genai`` SDK as the oracle for the simulator's Batch mode and Files
API: if ``client.files.upload/get/download`` and ``client.batches.create/get/cancel`` work
against it unchanged, the routes, headers and JSON shapes are the real ones."""
from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from PIL import Image

from bananaflow.providers.models import get_model
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer

PRO = "gemini-3-pro-image"
TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(api_key="test-key", thought_images=1)) as running:
        yield running


@pytest.fixture
def client(sim: SimulatorServer) -> genai.Client:
    sim.reset()
    sim.configure(batch_turnaround_s=0.3, batch_outcome="succeeded", script={}, blocked_words=())
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=sim.base_url))


def _request(prompt: str, ratio: str = "1:1", size: str = "1K") -> dict[str, Any]:
    return {
        "contents": [{"role": "user", "parts": [{"text": prompt}]}],
        "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": ratio, "imageSize": size}},
    }


def _jsonl(lines: list[dict[str, Any]]) -> io.BytesIO:
    return io.BytesIO("".join(json.dumps(line) + "\n" for line in lines).encode())


def _wait(client: genai.Client, name: str, timeout: float = 20.0) -> types.BatchJob:
    deadline = time.monotonic() + timeout
    while True:
        job = client.batches.get(name=name)
        if job.state.name in TERMINAL or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def _final_image(response: dict[str, Any]) -> bytes:
    parts = response["candidates"][0]["content"]["parts"]
    finals = [p for p in parts if "inlineData" in p and not p.get("thought")]
    return base64.b64decode(finals[-1]["inlineData"]["data"])


def test_file_batch_round_trip_with_per_item_errors(sim: SimulatorServer, client: genai.Client) -> None:
    sim.configure(script={"broken kettle": ["500"]}, blocked_words=("counterfeit",))
    lines = [
        {"key": "SKU-1/main", "request": _request("a red mug", "4:5", "2K")},
        {"key": "SKU-2/main", "request": _request("a broken kettle")},
        {"key": "SKU-3/main", "request": _request("a counterfeit bag")},
    ]
    uploaded = client.files.upload(
        file=_jsonl(lines), config={"mime_type": "application/jsonl", "display_name": "nightly-input"}
    )
    assert uploaded.name.startswith("files/") and uploaded.size_bytes == len(_jsonl(lines).getvalue())
    assert client.files.get(name=uploaded.name).display_name == "nightly-input"

    job = client.batches.create(model=PRO, src=uploaded.name, config={"display_name": "nightly"})
    assert job.name.startswith("batches/") and job.state.name == "JOB_STATE_PENDING"
    assert job.display_name == "nightly"

    done = _wait(client, job.name)
    assert done.state.name == "JOB_STATE_SUCCEEDED"
    assert done.dest is not None and done.dest.file_name.startswith("files/")
    results = [json.loads(line) for line in client.files.download(file=done.dest.file_name).splitlines()]
    by_key = {line["key"]: line for line in results}
    assert set(by_key) == {"SKU-1/main", "SKU-2/main", "SKU-3/main"}
    image = Image.open(io.BytesIO(_final_image(by_key["SKU-1/main"]["response"])))
    assert image.size == get_model(PRO).expected_pixels("4:5", "2K")
    assert by_key["SKU-2/main"]["error"]["code"] == 500
    assert by_key["SKU-3/main"]["response"]["candidates"][0]["finishReason"] == "IMAGE_SAFETY"
    assert sim.batch_stats()["batches_created"] == 1


def test_inline_batch_returns_inlined_responses(client: genai.Client) -> None:
    src = [
        {
            "contents": [{"role": "user", "parts": [{"text": "a green vase"}]}],
            "config": {"response_modalities": ["IMAGE"], "image_config": {"aspect_ratio": "16:9", "image_size": "1K"}},
            "metadata": {"key": "vase"},
        }
    ]
    job = client.batches.create(model=PRO, src=src)
    done = _wait(client, job.name)
    assert done.state.name == "JOB_STATE_SUCCEEDED"
    (answer,) = done.dest.inlined_responses
    assert answer.metadata == {"key": "vase"}
    finals = [p for p in answer.response.candidates[0].content.parts if p.inline_data and not p.thought]
    assert Image.open(io.BytesIO(finals[0].inline_data.data)).size == (1376, 768)


def test_cancel_stops_a_running_batch(sim: SimulatorServer, client: genai.Client) -> None:
    sim.configure(batch_turnaround_s=3600)
    job = client.batches.create(model=PRO, src=[{"contents": "a lamp", "metadata": {"key": "lamp"}}])
    assert client.batches.get(name=job.name).state.name == "JOB_STATE_PENDING"
    client.batches.cancel(name=job.name)
    assert client.batches.get(name=job.name).state.name == "JOB_STATE_CANCELLED"
    assert sim.batch_stats()["batch_cancels"] == 1


@pytest.mark.parametrize("outcome, state", [("failed", "JOB_STATE_FAILED"), ("expired", "JOB_STATE_EXPIRED")])
def test_forced_end_states(sim: SimulatorServer, client: genai.Client, outcome: str, state: str) -> None:
    sim.configure(batch_outcome=outcome)
    job = client.batches.create(model=PRO, src=[{"contents": "a lamp", "metadata": {"key": "lamp"}}])
    done = _wait(client, job.name)
    assert done.state.name == state
    assert done.dest is None or not done.dest.file_name


def test_unknown_batch_and_wrong_key_are_google_errors(sim: SimulatorServer, client: genai.Client) -> None:
    with pytest.raises(genai_errors.ClientError) as caught:
        client.batches.get(name="batches/doesnotexist")
    assert caught.value.code == 404
    bad = genai.Client(api_key="wrong", http_options=types.HttpOptions(base_url=sim.base_url))
    with pytest.raises(genai_errors.ClientError) as caught:
        bad.files.upload(file=_jsonl([{"key": "a", "request": _request("x")}]), config={"mime_type": "application/jsonl"})
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"


def test_list_pages_through_every_batch(client: genai.Client) -> None:
    names = [client.batches.create(model=PRO, src=[{"contents": f"lamp {i}", "metadata": {"key": str(i)}}],
                                   config={"display_name": f"lamp-{i}"}).name for i in range(5)]
    listed = list(client.batches.list(config={"page_size": 2}))
    assert sorted(job.name for job in listed) == sorted(names)
    assert {job.display_name for job in listed} == {f"lamp-{i}" for i in range(5)}
