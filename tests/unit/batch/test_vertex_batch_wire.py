"""Vertex batch prediction's shapes, read by ``bananaflow.batch.vertex_api`` from the payloads
kept in tests/fixtures/wire/vertex_batch/ (provenance there)."""
from __future__ import annotations

import io
import json

import pytest

from bananaflow.batch.api import TERMINAL_STATES, BatchStatus
from bananaflow.batch.gcs_staging import STAGING_ENV, split_gs_uri, staging_uri
from bananaflow.batch.vertex_api import KEY_LABEL, VertexBatchAPI, label_for, result_line, status_from_job
from bananaflow.errors import ConfigurationError
from bananaflow.planning.jobspec import build_job
from bananaflow.planning.plan import plan_catalog
from bananaflow.providers.settings import ProviderSettings
from tests.paths import EXAMPLES, FIXTURES

WIRE = FIXTURES / "wire" / "vertex_batch"


def test_a_succeeded_job_points_at_its_predictions_file() -> None:
    status = status_from_job(json.loads((WIRE / "batch_prediction_job_succeeded.json").read_text()))
    assert status.terminal and status.succeeded
    assert status.responses_file == "gs://bucket/out/predictions.jsonl"
    assert status.name.endswith("/batchPredictionJobs/3814889423749775360")


@pytest.mark.parametrize("state", json.loads((WIRE / "job_states.json").read_text()))
def test_every_job_state_is_either_an_end_or_a_reason_to_keep_polling(state: str) -> None:
    status = status_from_job({"name": "projects/1/locations/us-central1/batchPredictionJobs/2", "state": state})
    ends = {"JOB_STATE_SUCCEEDED", "JOB_STATE_PARTIALLY_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED",
            "JOB_STATE_EXPIRED"}
    assert status.terminal == (state in ends)
    assert status.succeeded == (state in {"JOB_STATE_SUCCEEDED", "JOB_STATE_PARTIALLY_SUCCEEDED"})
    assert not BatchStatus("b", "JOB_STATE_RUNNING", done=False).terminal and "JOB_STATE_RUNNING" not in TERMINAL_STATES


def test_a_result_line_gives_its_response_and_the_key_from_the_echoed_labels() -> None:
    raw = (WIRE / "predictions_line_text.jsonl").read_bytes()
    line = result_line(1, raw)
    assert line.error is None and line.response is not None and line.key is None  # Google's sample has no labels
    assert line.response["usageMetadata"]["candidatesTokenCount"] == 110
    labelled = json.loads(raw)
    labelled["request"]["labels"] = {KEY_LABEL: label_for("shop/MUG-001/main-abc")}
    assert result_line(1, json.dumps(labelled).encode()).key == label_for("shop/MUG-001/main-abc")


def test_an_error_line_becomes_a_google_error_envelope() -> None:
    line = result_line(1, (WIRE / "modelled_predictions_line_error.jsonl").read_bytes())
    assert line.response is None and line.error == {"code": 400, "message": "Request contains an invalid argument.",
                                                    "status": "INVALID_ARGUMENT"}
    assert line.key == "0123456789abcdef0123456789abcdef01234567"
    rpc = result_line(2, json.dumps({"status": {"code": 8, "message": "busy"}, "request": {}}).encode())
    assert rpc.error == {"code": 429, "message": "busy"}
    assert result_line(3, b"{not json").problem == "results line 3 is not JSON"


def _api(monkeypatch: pytest.MonkeyPatch, location: str = "global") -> VertexBatchAPI:
    from bananaflow.batch.gcs_staging import GcsStaging

    monkeypatch.delenv("BANANAFLOW_VERTEX_BATCH_LOCATION", raising=False)
    settings = ProviderSettings.from_env({"GOOGLE_GENAI_USE_VERTEXAI": "1", "GOOGLE_CLOUD_PROJECT": "shop",
                                          "GOOGLE_CLOUD_LOCATION": location})
    return VertexBatchAPI(settings, GcsStaging("gs://b/p"))


def test_input_lines_carry_only_the_request_with_the_key_in_its_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    api = _api(monkeypatch)
    items = plan_catalog(str(EXAMPLES / "catalog.csv"), build_job(), prefix="shop").items[:2]
    lines = [json.loads(line) for line in api.input_file(items).splitlines()]
    assert [set(line) for line in lines] == [{"request"}, {"request"}]
    assert [line["request"]["labels"] for line in lines] == [{KEY_LABEL: api.result_key(i.key_stem)} for i in items]
    label = api.result_key(items[0].key_stem)
    assert len(label) <= 63 and label == label.lower()
    assert [line.key for line in api.read_results(io.BytesIO(b"\n".join(
        json.dumps({"status": "", "request": line["request"], "response": {"candidates": []}}).encode()
        for line in lines)))] == [api.result_key(i.key_stem) for i in items]


def test_a_global_run_creates_its_jobs_in_us_central1(monkeypatch: pytest.MonkeyPatch) -> None:
    api = _api(monkeypatch)
    assert api.location == "us-central1" and api.base_url == "https://us-central1-aiplatform.googleapis.com"
    assert api.parent == "/v1/projects/shop/locations/us-central1"
    regional = _api(monkeypatch, "europe-west4")
    assert regional.location == "europe-west4" and regional.base_url == "https://europe-west4-aiplatform.googleapis.com"
    assert api._job_path("projects/510528649030/locations/us-central1/batchPredictionJobs/38") == \
        "projects/510528649030/locations/us-central1/batchPredictionJobs/38"


def test_the_create_body_has_the_documented_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    import httpx

    api = _api(monkeypatch)
    documented = json.loads((WIRE / "modelled_batch_prediction_job_create_request.json").read_text())
    sent: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"name": "projects/1/locations/us-central1/batchPredictionJobs/9",
                                         "state": "JOB_STATE_PENDING"})

    class Tokens:
        service_account = None

        async def token(self) -> str:
            return "ya29.test"

    api._client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    api._tokens = Tokens()  # type: ignore[assignment]
    status = asyncio.run(api.create("gemini-3-pro-image", "gs://b/p/x/input.jsonl", "bananaflow-x"))
    assert status.state == "JOB_STATE_PENDING" and not status.terminal
    (body,) = sent
    assert set(body) == set(documented)
    assert {k: set(v) for k, v in body.items() if isinstance(v, dict)} == \
        {k: set(v) for k, v in documented.items() if isinstance(v, dict)}
    assert body["model"] == "publishers/google/models/gemini-3-pro-image"
    assert body["outputConfig"]["gcsDestination"]["outputUriPrefix"] == "gs://b/p/bananaflow-x/output"


def test_staging_is_the_runs_bucket_in_cloud_storage_else_the_setting() -> None:
    assert staging_uri("gs://shop/cat/runs/_batches", {}) == "gs://shop/cat/runs/_batches/vertex"
    assert staging_uri("s3://shop/cat/runs/_batches", {STAGING_ENV: "gs://stage/bf/"}) == "gs://stage/bf"
    with pytest.raises(ConfigurationError, match=STAGING_ENV) as caught:
        staging_uri("s3://shop/cat/runs/_batches", {})
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="not a Cloud Storage location"):
        split_gs_uri("s3://x/y")
    with pytest.raises(ConfigurationError, match=r"'\.\.'"):
        split_gs_uri("gs://x/a/../b")
