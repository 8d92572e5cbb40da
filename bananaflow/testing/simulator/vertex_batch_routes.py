"""Vertex AI batch prediction (``batchPredictionJobs``), reading and writing Cloud Storage.

``POST /{v1,v1beta1}/projects/P/locations/L/batchPredictionJobs`` takes the body Google's
reference and the google-genai SDK send (``displayName``, ``model`` =
``publishers/google/models/M``, ``inputConfig {instancesFormat: jsonl, gcsSource.uris}``,
``outputConfig {predictionsFormat: jsonl, gcsDestination.outputUriPrefix}``) and answers the
``BatchPredictionJob``; ``GET .../batchPredictionJobs/ID``, ``GET .../batchPredictionJobs``
(``filter=display_name="..."``, paged) and ``POST .../ID:cancel`` follow it. Names carry the
project *number*, as Google's do. A job is ``JOB_STATE_PENDING``, then ``_RUNNING``, then
(when polled after ``batch_turnaround_s``) ``_SUCCEEDED``: every ``{"request": ...}`` line of
its input is read from the Cloud Storage emulator (``gcs_endpoint`` or the process's
``STORAGE_EMULATOR_HOST``), answered by the same engine as a realtime call, and written to
``{outputUriPrefix}/prediction-model-{stamp}/predictions.jsonl`` as
``{"status", "processed_time", "request", "response"}`` lines, an error in ``status``.
Jobs are regional: location ``global`` is refused, and so is a model whose
``vertex_batch`` is false in the models table.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bananaflow.providers.models import get_model
from bananaflow.testing.simulator.batch_routes import _answer_one
from bananaflow.testing.simulator.batch_store import BatchRequest, rfc3339
from bananaflow.testing.simulator.engine import SimulatorEngine
from bananaflow.testing.simulator.oauth import bearer_token
from bananaflow.testing.simulator.vertex_routes import VERTEX_VERSIONS, vertex_error

PENDING, RUNNING, SUCCEEDED = "JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"
FAILED, CANCELLED, EXPIRED = "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED, EXPIRED})
_END = {"succeeded": SUCCEEDED, "failed": FAILED, "expired": EXPIRED}
_STATUS_WORDS = {400: "Bad Request", 429: "Too Many Requests", 500: "Internal Server Error",
                 503: "Service Unavailable"}


@dataclass
class VertexJob:
    id: str
    project_number: str
    location: str
    display_name: str
    model: str
    body: dict[str, Any]
    created_mono: float = field(default_factory=time.monotonic)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    state: str | None = None  # fixed once ended
    ended: datetime | None = None
    output_dir: str = ""
    succeeded: int = 0
    failed: int = 0
    error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        return f"projects/{self.project_number}/locations/{self.location}/batchPredictionJobs/{self.id}"

    def resource(self, state: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "displayName": self.display_name, "model": f"publishers/google/models/{self.model}",
            "inputConfig": self.body["inputConfig"], "outputConfig": self.body["outputConfig"], "state": state,
            "createTime": rfc3339(self.created), "updateTime": rfc3339(self.ended or datetime.now(UTC)),
            "modelVersionId": "1",
        }
        if state != PENDING:
            out["startTime"] = rfc3339(self.created)
        if self.ended is not None:
            out["endTime"] = rfc3339(self.ended)
        if state == SUCCEEDED:
            out["outputInfo"] = {"gcsOutputDirectory": self.output_dir}
            out["completionStats"] = {"successfulCount": str(self.succeeded), "failedCount": str(self.failed),
                                      "incompleteCount": "0"}
        if state == FAILED:
            out["error"] = {"code": 13, "message": self.error or "Batch prediction job failed: an internal error."}
        return out


def jobs_of(engine: SimulatorEngine) -> dict[str, VertexJob]:
    """The Vertex jobs of one simulator (every job created, oldest first; cleared on reset)."""
    jobs: dict[str, VertexJob] = engine.batches.vertex_jobs
    return jobs


def _project_number(project: str) -> str:
    return str(int(hashlib.sha256(project.encode()).hexdigest()[:10], 16) % 10**12).rjust(12, "1")


def _gcs(engine: SimulatorEngine) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    endpoint = engine.config.gcs_endpoint or os.environ.get("STORAGE_EMULATOR_HOST")
    if not endpoint:
        raise RuntimeError("the simulator's Vertex batch routes need a Cloud Storage emulator (gcs_endpoint)")
    return storage.Client(project="bananaflow-sim", credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": endpoint})


def _split(uri: str) -> tuple[str, str]:
    bucket, _, path = uri.removeprefix("gs://").partition("/")
    return bucket, path


def _unauthorized(request: Request, engine: SimulatorEngine) -> Response | None:
    from bananaflow.testing.simulator.vertex_routes import UNAUTHENTICATED_MESSAGE

    if not engine.oauth.valid(bearer_token(request)):
        return vertex_error(engine.config, 401, UNAUTHENTICATED_MESSAGE)
    if request.path_params["project"] in engine.config.vertex_denied_projects:
        return vertex_error(engine.config, 403, "Permission 'aiplatform.batchPredictionJobs.create' denied on "
                                                f"resource '//aiplatform.googleapis.com/projects/"
                                                f"{request.path_params['project']}' (or it may not exist).")
    return None


def _check_body(body: Any, location: str) -> tuple[str, str] | str:
    """``(model id, display name)`` of a well-formed create body, or why it is refused."""
    if location == "global":
        return "Batch prediction is not available in location global; use a region such as us-central1."
    if not isinstance(body, dict):
        return "Invalid JSON payload received."
    model = str(body.get("model") or "")
    if not model.startswith("publishers/google/models/"):
        return "BatchPredictionJob.model must be publishers/google/models/MODEL."
    inp, out = body.get("inputConfig"), body.get("outputConfig")
    if not isinstance(inp, dict) or inp.get("instancesFormat") != "jsonl" or \
            not (isinstance(inp.get("gcsSource"), dict) and inp["gcsSource"].get("uris")):
        return "inputConfig needs instancesFormat jsonl and gcsSource.uris."
    if not isinstance(out, dict) or out.get("predictionsFormat") != "jsonl" or \
            not str((out.get("gcsDestination") or {}).get("outputUriPrefix") or "").startswith("gs://"):
        return "outputConfig needs predictionsFormat jsonl and gcsDestination.outputUriPrefix."
    model_id = model.rsplit("/", 1)[1]
    try:
        spec = get_model(model_id)
    except Exception:
        return f"Publisher model {model} was not found."
    if not spec.vertex_batch:
        return f"Model {model} does not support batch prediction."
    if not str(body.get("displayName") or ""):
        return "BatchPredictionJob.display_name is required."
    return model_id, str(body["displayName"])


async def create_job(request: Request) -> Response:
    engine: SimulatorEngine = request.app.state.engine
    if (denied := _unauthorized(request, engine)) is not None:
        return denied
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = None
    checked = _check_body(body, request.path_params["location"])
    if isinstance(checked, str):
        return vertex_error(engine.config, 400, checked)
    job = VertexJob(uuid.uuid4().int.__str__()[:19], _project_number(request.path_params["project"]),
                    request.path_params["location"], checked[1], checked[0], body)
    engine.batches.add_vertex_job(job.id, job)
    return JSONResponse(job.resource(PENDING))


def _answer_line(engine: SimulatorEngine, model: str, raw: str) -> tuple[dict[str, Any], bool]:
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
    try:
        line = json.loads(raw)
        request = line["request"] if isinstance(line, dict) and isinstance(line.get("request"), dict) else None
    except ValueError:
        request = None
    if request is None:
        status = 'Bad Request: {"error": {"code": 400, "message": "Invalid JSON in the input line.", ' \
                 '"status": "INVALID_ARGUMENT"}}'
        return {"status": status, "processed_time": stamp, "request": None, "response": None}, False
    answer = _answer_one(engine, model, BatchRequest(None, None, {k: v for k, v in request.items() if k != "labels"}))
    if "error" in answer:
        code = int(answer["error"].get("code") or 500)
        status = f"{_STATUS_WORDS.get(code, 'Error')}: {json.dumps({'error': answer['error']})}"
        return {"status": status, "processed_time": stamp, "request": request, "response": None}, False
    return {"status": "", "processed_time": stamp, "request": request, "response": answer["response"]}, True


def _finish(engine: SimulatorEngine, job: VertexJob) -> None:
    """Read the input from Cloud Storage, answer every line, write ``predictions.jsonl``."""
    state = _END[engine.config.batch_outcome]
    if state == SUCCEEDED:
        try:
            client = _gcs(engine)
            lines: list[str] = []
            for uri in job.body["inputConfig"]["gcsSource"]["uris"]:
                bucket, path = _split(uri)
                lines += client.bucket(bucket).blob(path).download_as_bytes().decode("utf-8").splitlines()
            out: list[str] = []
            for raw in (line for line in lines if line.strip()):
                answer, ok = _answer_line(engine, job.model, raw)
                job.succeeded, job.failed = job.succeeded + ok, job.failed + (not ok)
                out.append(json.dumps(answer, separators=(",", ":")))
            prefix = job.body["outputConfig"]["gcsDestination"]["outputUriPrefix"].rstrip("/")
            job.output_dir = f"{prefix}/prediction-model-{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"
            bucket, path = _split(job.output_dir + "/predictions.jsonl")
            client.bucket(bucket).blob(path).upload_from_string("\n".join(out) + "\n", content_type="application/jsonl")
        except Exception as exc:  # noqa: BLE001 - an unreadable input fails the job, as on Google's side
            state, job.error = FAILED, f"Batch prediction job failed: {type(exc).__name__}: {exc}"[:500]
    job.ended, job.state = datetime.now(UTC), state


def _job(request: Request) -> tuple[SimulatorEngine, VertexJob] | Response:
    engine: SimulatorEngine = request.app.state.engine
    if (denied := _unauthorized(request, engine)) is not None:
        return denied
    job = jobs_of(engine).get(request.path_params["job_id"])
    if job is None:
        return vertex_error(engine.config, 404, f"BatchPredictionJob {request.path_params['job_id']} not found.")
    return engine, job


def _state(engine: SimulatorEngine, job: VertexJob) -> str:
    if job.state is not None:
        return job.state
    elapsed, turnaround = time.monotonic() - job.created_mono, engine.config.batch_turnaround_s
    if elapsed >= turnaround:
        return "due"
    return PENDING if elapsed < turnaround / 4 else RUNNING


async def get_job(request: Request) -> Response:
    found = _job(request)
    if isinstance(found, Response):
        return found
    engine, job = found
    if _state(engine, job) == "due":
        def finish_once() -> None:
            with job.lock:
                if job.state is None:
                    _finish(engine, job)

        await run_in_threadpool(finish_once)
    return JSONResponse(job.resource(job.state or _state(engine, job)))


async def list_jobs(request: Request) -> Response:
    """Newest first; ``filter=display_name="X"`` (the one filter bananaflow sends) is honoured."""
    engine: SimulatorEngine = request.app.state.engine
    if (denied := _unauthorized(request, engine)) is not None:
        return denied
    wanted = request.query_params.get("filter", "")
    name = wanted.split("=", 1)[1].strip().strip('"') if wanted.startswith("display_name=") else None
    try:
        size = max(1, min(1000, int(request.query_params.get("pageSize", "100"))))
        start = int(request.query_params.get("pageToken") or 0)
    except ValueError:
        return vertex_error(engine.config, 400, "pageSize and pageToken must be integers.")
    jobs = [j for j in list(jobs_of(engine).values())[::-1] if name is None or j.display_name == name]
    page = [j.resource(RUNNING if _state(engine, j) == "due" else _state(engine, j)) for j in jobs[start:start + size]]
    body: dict[str, Any] = {"batchPredictionJobs": page}
    if start + size < len(jobs):
        body["nextPageToken"] = str(start + size)
    return JSONResponse(body)


async def cancel_job(request: Request) -> Response:
    found = _job(request)
    if isinstance(found, Response):
        return found
    engine, job = found
    with job.lock:
        if job.state is None:
            job.state, job.ended = CANCELLED, datetime.now(UTC)
    engine.batches.count_cancel()
    return JSONResponse({})


_BASE = "/{version}/projects/{project}/locations/{location}/batchPredictionJobs"
routes = [
    route
    for v in VERTEX_VERSIONS
    for route in (
        Route(_BASE.replace("{version}", v), create_job, methods=["POST"]),
        Route(_BASE.replace("{version}", v), list_jobs, methods=["GET"]),
        Route(_BASE.replace("{version}", v) + "/{job_id}:cancel", cancel_job, methods=["POST"]),
        Route(_BASE.replace("{version}", v) + "/{job_id}", get_job, methods=["GET"]),
    )
]
