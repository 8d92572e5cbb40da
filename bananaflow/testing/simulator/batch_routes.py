"""Batch mode and the Files API, as the official ``google-genai`` SDK calls them.

Served under ``v1beta`` (the reference) and ``v1`` (what the SDK calls with a custom base
URL), like ``generateContent``.

* ``POST /upload/v1beta/files`` resumable upload: ``X-Goog-Upload-Command: start`` answers
  with an ``X-Goog-Upload-URL``; chunks go there with ``upload`` (``, finalize`` on the last)
  and ``X-Goog-Upload-Offset``; the final answer is ``{"file": {...}}`` with
  ``X-Goog-Upload-Status: final``.
* ``GET /v1beta/files/ID``; ``GET /download/v1beta/files/ID:download?alt=media`` (the SDK
  itself calls the same path without ``/download``; both are served).
* ``POST /v1beta/models/M:batchGenerateContent`` (file or inline input),
  ``GET /v1beta/batches/ID``, ``GET /v1beta/batches`` (list), ``POST /v1beta/batches/ID:cancel``.

Each request of a batch gets an outcome from the same script, chance and word lists as a
realtime call, and is answered in the same ``generateContent`` JSON, so a succeeded batch
can carry per-item errors and safety blocks exactly as realtime calls do.
"""
from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bananaflow.testing.simulator.auth import is_authorized
from bananaflow.testing.simulator.batch_store import (
    CANCELLED,
    END_STATES,
    RUNNING,
    SUCCEEDED,
    TERMINAL,
    BatchRequest,
    SimBatch,
)
from bananaflow.testing.simulator.calls import WireError
from bananaflow.testing.simulator.defects import defect_for
from bananaflow.testing.simulator.engine import SimulatorEngine, final_image
from bananaflow.testing.simulator.faults.quota import SCRIPTED_LIMIT, per_day, per_minute
from bananaflow.testing.simulator.gemini_render import GeminiRenderer, google_error
from bananaflow.testing.simulator.gemini_routes import API_VERSIONS
from bananaflow.testing.simulator.gemini_wire import lookup_model, parse_generate_content

_ERROR_OUTCOMES = {"500": 500, "503": 503, "html_502": 500, "reset": 500}


def _engine(request: Request) -> SimulatorEngine:
    return request.app.state.engine


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _unauthorized(request: Request) -> Response | None:
    if is_authorized(request, _engine(request).config.api_key):
        return None
    return GeminiRenderer(_engine(request).config).bad_key()


def _body_json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise WireError(400, "Invalid JSON payload received. Unexpected token.") from None


# -- Files API -------------------------------------------------------------------------


async def upload(request: Request) -> Response:
    """Both legs of the resumable protocol on one path: ``start`` without ``upload_id``,
    then ``upload``/``finalize`` with it. Like Google's, the session URL is the credential
    for its chunks (the SDK sends them without the API key); ``start`` needs the key."""
    store = _engine(request).batches
    command = {c.strip().lower() for c in request.headers.get("x-goog-upload-command", "").split(",") if c.strip()}
    upload_id = request.query_params.get("upload_id")
    if upload_id is None:
        if (denied := _unauthorized(request)) is not None:
            return denied
        if request.headers.get("x-goog-upload-protocol", "").lower() != "resumable" or command != {"start"}:
            return google_error(400, "Uploads must use X-Goog-Upload-Protocol: resumable and start with "
                                "X-Goog-Upload-Command: start.")
        try:
            meta = _body_json(await request.body()).get("file") or {}
        except WireError as exc:
            return google_error(400, exc.message)
        declared = request.headers.get("x-goog-upload-header-content-length")
        mime = (request.headers.get("x-goog-upload-header-content-type") or meta.get("mimeType")
                or meta.get("mime_type") or "application/octet-stream")
        display_name = str(meta.get("displayName") or meta.get("display_name") or "")
        new_id = store.start_upload(display_name, mime, int(declared) if declared else None)
        url = f"{_base_url(request)}{request.url.path}?upload_id={new_id}&upload_protocol=resumable"
        return Response(b"", headers={"X-Goog-Upload-URL": url, "X-Goog-Upload-Status": "active",
                                      "X-Goog-Upload-Chunk-Granularity": "8388608"})
    session = store.session(upload_id)
    if session is None:
        return google_error(404, f"Upload session {upload_id} not found.")
    if not command or not command <= {"upload", "finalize"}:
        return google_error(400, f"Unknown X-Goog-Upload-Command {request.headers.get('x-goog-upload-command')!r}.")
    chunk = await request.body()
    if "upload" in command:
        offset = int(request.headers.get("x-goog-upload-offset", "-1"))
        if offset != len(session.received):
            return google_error(400, f"X-Goog-Upload-Offset {offset} does not match the {len(session.received)} "
                                "bytes received so far.")
        session.received.extend(chunk)
    if "finalize" not in command:
        return Response(b"", headers={"X-Goog-Upload-Status": "active"})
    if session.declared_size is not None and session.declared_size != len(session.received):
        return google_error(400, f"Upload declared {session.declared_size} bytes but {len(session.received)} arrived.")
    stored = store.finish_upload(upload_id)
    return JSONResponse({"file": stored.resource(_base_url(request))}, headers={"X-Goog-Upload-Status": "final"})


async def get_file(request: Request) -> Response:
    if (denied := _unauthorized(request)) is not None:
        return denied
    stored = _engine(request).batches.file(request.path_params["file_id"])
    if stored is None:
        return google_error(404, f"File files/{request.path_params['file_id']} not found.")
    return JSONResponse(stored.resource(_base_url(request)))


async def download_file(request: Request) -> Response:
    if (denied := _unauthorized(request)) is not None:
        return denied
    store = _engine(request).batches
    stored = store.file(request.path_params["file_id"])
    if stored is None:
        return google_error(404, f"File files/{request.path_params['file_id']} not found.")
    if stored.source != "GENERATED":
        return google_error(400, "Only generated files can be downloaded; uploaded files cannot.")
    store.count_download()
    return Response(stored.data, media_type=stored.mime_type)


# -- Batches -----------------------------------------------------------------------------


def _read_jsonl(data: bytes) -> list[BatchRequest]:
    requests: list[BatchRequest] = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            requests.append(BatchRequest(None, None, None, f"line {number}: invalid JSON"))
            continue
        if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
            requests.append(BatchRequest(None, None, None, f"line {number}: expected {{\"key\", \"request\"}}"))
            continue
        key = item.get("key")
        requests.append(BatchRequest(str(key) if key is not None else None, None, item["request"]))
    return requests


def _read_batch_body(engine: SimulatorEngine, raw: Any) -> tuple[dict[str, Any], list[BatchRequest], bool, str]:
    batch = raw.get("batch") if isinstance(raw, dict) else None
    if not isinstance(batch, dict):
        raise WireError(400, "* BatchGenerateContentRequest.batch: batch is not specified", "batch")
    input_config = batch.get("inputConfig") or batch.get("input_config")
    if not isinstance(input_config, dict):
        raise WireError(400, "* GenerateContentBatch.input_config: input_config is not specified", "batch.input_config")
    display_name = str(batch.get("displayName") or batch.get("display_name") or "")
    file_name = input_config.get("fileName") or input_config.get("file_name")
    inline = input_config.get("requests")
    if bool(file_name) == bool(inline):
        raise WireError(400, "* GenerateContentBatch.input_config: exactly one of file_name or requests is required",
                        "batch.input_config")
    if file_name:
        stored = engine.batches.file(str(file_name).removeprefix("files/"))
        if stored is None:
            raise WireError(404, f"File {file_name} not found.")
        return {"fileName": str(file_name)}, _read_jsonl(stored.data), False, display_name
    entries = inline.get("requests") if isinstance(inline, dict) else None
    if not isinstance(entries, list) or not entries:
        raise WireError(400, "* GenerateContentBatch.input_config.requests: requests is empty", "batch.input_config")
    requests = [
        BatchRequest(None, e.get("metadata") if isinstance(e.get("metadata"), dict) else None,
                     e.get("request") if isinstance(e.get("request"), dict) else None,
                     None if isinstance(e.get("request"), dict) else "request is not specified")
        for e in entries if isinstance(e, dict)
    ]
    return {"requests": {"requests": [{"metadata": r.metadata} for r in requests]}}, requests, True, display_name


async def create_batch(request: Request) -> Response:
    if (denied := _unauthorized(request)) is not None:
        return denied
    engine = _engine(request)
    model_id = request.path_params["model"]
    try:
        lookup_model(model_id, "v1beta")
        input_config, requests, inline, display_name = _read_batch_body(engine, _body_json(await request.body()))
    except WireError as error:
        return GeminiRenderer(engine.config).wire_error(error)
    batch = SimBatch(uuid.uuid4().hex[:16], model_id, display_name, input_config, requests, inline)
    engine.batches.add_batch(batch)
    return JSONResponse(batch.operation(batch.state_at(engine.config.batch_turnaround_s, batch.created_mono),
                                        _base_url(request)))


def _body(response: Response) -> Any:
    """The JSON a rendered response carries, as the realtime route would send it."""
    return json.loads(bytes(response.body))


def _answer_one(engine: SimulatorEngine, model_id: str, item: BatchRequest) -> dict[str, Any]:
    """``{"response": {...}}`` or ``{"error": {...}}`` for one request, as realtime would."""
    config = engine.config
    renderer = GeminiRenderer(config)
    if item.request is None:
        return {"error": {"code": 400, "message": item.problem or "invalid request", "status": "INVALID_ARGUMENT"}}
    spec = lookup_model(model_id, "v1beta")
    body = {k: v for k, v in item.request.items() if k != "model"}
    try:
        call = parse_generate_content(spec, body)
    except WireError as error:
        return {"error": _body(renderer.wire_error(error))["error"]}
    outcome = engine.pick_outcome(call.prompt)
    if outcome in ("429", "429_day"):
        limit = config.requests_per_minute or SCRIPTED_LIMIT
        rejection = per_minute(spec.id, limit, config.script_retry_delay) if outcome == "429" else per_day(spec.id, limit)
        return {"error": _body(renderer.rejection(rejection))["error"]}
    if outcome in _ERROR_OUTCOMES:
        return {"error": _body(renderer.server_error(_ERROR_OUTCOMES[outcome]))["error"]}
    if outcome in ("blocked", "prompt_blocked"):
        return {"response": _body(renderer.blocked(call, prompt_level=outcome == "prompt_blocked"))}
    shown = "ok" if outcome in ("truncated_json", "slow") else outcome
    if shown == "ok" and not call.wants_image:
        shown = "text_only"
    answer = renderer.generated(call, shown, final_image(call, shown, config.image_mime,
                                                         defect_for(config.defects, call.prompt)))
    return {"response": _body(answer)}


def _finish(engine: SimulatorEngine, batch: SimBatch) -> None:
    """Fix the end state; for a success, answer every request and store the results."""
    outcome = engine.config.batch_outcome
    state = END_STATES[outcome]
    if state == SUCCEEDED:
        lines: list[dict[str, Any]] = []
        for item in batch.requests:
            answer = _answer_one(engine, batch.model, item)
            if "error" in answer:
                batch.failed += 1
            else:
                batch.succeeded += 1
            if batch.inline:
                lines.append({**answer, **({"metadata": item.metadata} if item.metadata else {})})
            else:
                lines.append({**({"key": item.key} if item.key is not None else {}), **answer})
        if batch.inline:
            batch.inlined_responses = lines
        else:
            data = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()
            stored = engine.batches.add_generated(data, "application/jsonl", f"{batch.display_name}-results")
            batch.responses_file = stored.name
    batch.ended = datetime.now(UTC)
    batch.end_state = state


def _batch_of(request: Request) -> tuple[SimulatorEngine, SimBatch] | Response:
    """The engine and the batch the path names, or the 401/404 answer to give instead."""
    if (denied := _unauthorized(request)) is not None:
        return denied
    engine = _engine(request)
    batch = engine.batches.batch(request.path_params["batch_id"])
    if batch is None:
        return google_error(404, f"Batch batches/{request.path_params['batch_id']} not found.")
    return engine, batch


async def get_batch(request: Request) -> Response:
    found = _batch_of(request)
    if isinstance(found, Response):
        return found
    engine, batch = found
    state = batch.state_at(engine.config.batch_turnaround_s, time.monotonic())
    if state == "due":
        def finish_once() -> None:
            with batch.lock:
                if batch.end_state is None:
                    _finish(engine, batch)

        await run_in_threadpool(finish_once)
        state = batch.end_state or SUCCEEDED
    return JSONResponse(batch.operation(state, _base_url(request)))


async def list_batches(request: Request) -> Response:
    """``GET /v1beta/batches``: newest first, paged by ``pageSize``/``pageToken``. Batches
    whose turnaround has passed are listed as running: they end when they are polled."""
    if (denied := _unauthorized(request)) is not None:
        return denied
    engine = _engine(request)
    try:
        size = max(1, min(1000, int(request.query_params.get("pageSize", "50"))))
        start = int(request.query_params.get("pageToken") or 0)
    except ValueError:
        return google_error(400, "pageSize and pageToken must be integers.")
    batches = engine.batches.all_batches()[::-1]
    now, turnaround = time.monotonic(), engine.config.batch_turnaround_s
    page = [b.operation(RUNNING if b.state_at(turnaround, now) == "due" else b.state_at(turnaround, now),
                        _base_url(request)) for b in batches[start : start + size]]
    body: dict[str, Any] = {"operations": page}
    if start + size < len(batches):
        body["nextPageToken"] = str(start + size)
    return JSONResponse(body)


async def cancel_batch(request: Request) -> Response:
    found = _batch_of(request)
    if isinstance(found, Response):
        return found
    engine, batch = found
    with batch.lock:
        if batch.end_state not in TERMINAL:
            batch.end_state, batch.ended = CANCELLED, datetime.now(UTC)
    engine.batches.count_cancel()
    return JSONResponse({})


routes = [
    route
    for version in API_VERSIONS
    for route in (
        Route(f"/upload/{version}/files", upload, methods=["POST"]),
        Route(f"/download/{version}/files/{{file_id}}:download", download_file, methods=["GET"]),
        Route(f"/{version}/files/{{file_id}}:download", download_file, methods=["GET"]),
        Route(f"/{version}/files/{{file_id}}", get_file, methods=["GET"]),
        Route(f"/{version}/models/{{model}}:batchGenerateContent", create_batch, methods=["POST"]),
        Route(f"/{version}/batches", list_batches, methods=["GET"]),
        Route(f"/{version}/batches/{{batch_id}}:cancel", cancel_batch, methods=["POST"]),
        Route(f"/{version}/batches/{{batch_id}}", get_batch, methods=["GET"]),
    )
]
