"""Vertex AI batch prediction: the same five calls as AI Studio's Batch mode, another door.

``BatchRunner`` drives this exactly like ``GeminiBatchAPI`` (plan, record, create, poll,
collect, ledger); what differs, from Google's API reference and the google-genai SDK's
Vertex converters (sources in docs/google-cloud.md, payloads in tests/fixtures/wire/vertex_batch/):

* the requests file is uploaded to Cloud Storage (``gcs_staging``), not the Files API;
* ``POST /v1/projects/P/locations/L/batchPredictionJobs`` with ``displayName``, ``model``
  (``publishers/google/models/M``), ``inputConfig {instancesFormat: jsonl, gcsSource.uris}``
  and ``outputConfig {predictionsFormat: jsonl, gcsDestination.outputUriPrefix}``; the job
  is polled at ``GET /v1/{name}`` and its states are ``JOB_STATE_*``;
* results are ``{outputInfo.gcsOutputDirectory}/predictions.jsonl``, one line per request:
  ``{"status": "", "processed_time": ..., "request": {...}, "response": {...}}`` in no
  promised order, with an error in ``status`` instead of a response;
* a Vertex input line has only ``request``: no ``key``. The item's key rides in the
  request's ``labels`` (echoed back in the result line): ``bananaflow-key`` = a digest of the
  key stem, because label values are lowercase and at most 63 characters;
* jobs are regional: L is ``vertex_batch_location`` (us-central1 for a ``global`` run).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from typing import IO, Any
from urllib.parse import quote

import httpx

from bananaflow.batch.api import BatchStatus
from bananaflow.batch.gcs_staging import GcsStaging
from bananaflow.batch.jsonl import ResultLine, image_request
from bananaflow.errors import AuthError, BadResponse, ConfigurationError, ProviderError
from bananaflow.planning.work import WorkItem
from bananaflow.providers._http import int_field, make_client, read_json, send
from bananaflow.providers.gcp_auth import AccessTokens, shared_tokens
from bananaflow.providers.gemini import build_body
from bananaflow.providers.models import get_model
from bananaflow.providers.settings import ProviderSettings
from bananaflow.providers.vertex import explain_vertex_error
from bananaflow.providers.vertex_settings import vertex_batch_location, vertex_host_root

KEY_LABEL = "bananaflow-key"


def label_for(key_stem: str) -> str:
    """The label value naming ``key_stem``: lowercase hex, well under the 63-character limit."""
    return hashlib.sha256(key_stem.encode()).hexdigest()[:40]


def _obj(value: object) -> dict[str, Any]:
    """A JSON object of the payload, or an empty one where there is none (or another type)."""
    return value if isinstance(value, dict) else {}


def status_from_job(job: dict[str, Any]) -> BatchStatus:
    """A ``BatchPredictionJob`` as the runner's ``BatchStatus``; results once it has them."""
    state = str(job.get("state") or "JOB_STATE_UNSPECIFIED")
    output = _obj(job.get("outputInfo"))
    directory = str(output.get("gcsOutputDirectory") or "").rstrip("/")
    error, stats = _obj(job.get("error")), _obj(job.get("completionStats"))
    return BatchStatus(
        name=str(job.get("name") or ""), state=state, done=False,
        responses_file=f"{directory}/predictions.jsonl" if directory else None,
        request_count=int_field(stats, "successfulCount") + int_field(stats, "failedCount"),
        error_message=str(error.get("message") or ""),
    )


def result_line(number: int, raw: bytes) -> ResultLine:
    """One line of ``predictions.jsonl``: the key from the echoed request's labels; an error
    in ``status`` (a string, often ``"Reason: {json envelope}"``) becomes an error envelope."""
    try:
        line = json.loads(raw)
    except ValueError:
        return ResultLine(None, None, None, f"results line {number} is not JSON")
    if not isinstance(line, dict):
        return ResultLine(None, None, None, f"results line {number} is not an object")
    labels = _obj(_obj(line.get("request")).get("labels"))
    key = labels.get(KEY_LABEL)
    response = line.get("response") if isinstance(line.get("response"), dict) and line["response"] else None
    status = line.get("status")
    error = _status_error(status) if status and response is None else None
    if response is None and error is None:
        error = {"code": 500, "message": f"results line {number} has neither response nor status"}
    return ResultLine(str(key) if key is not None else None, response, error)


def _status_error(status: object) -> dict[str, Any]:
    if isinstance(status, dict):  # a google.rpc.Status
        return {"code": _http_code(status.get("code")), "message": str(status.get("message") or ""),
                **({"status": status["status"]} if isinstance(status.get("status"), str) else {})}
    text = str(status)
    start = text.find("{")
    if start >= 0:
        try:
            inner = json.loads(text[start:])
        except ValueError:
            inner = None
        if isinstance(inner, dict) and isinstance(inner.get("error"), dict):
            envelope: dict[str, Any] = inner["error"]
            return envelope
    return {"code": 500, "message": text[:500]}


def _http_code(code: object) -> int:
    """An rpc code (3 = INVALID_ARGUMENT ...) or an HTTP one, as HTTP."""
    rpc = {3: 400, 7: 403, 8: 429, 5: 404, 13: 500, 14: 503, 16: 401}
    if isinstance(code, int):
        return code if code >= 100 else rpc.get(code, 500)
    return 500


class VertexBatchAPI:
    """Requests to Cloud Storage, jobs on Vertex AI, results back from Cloud Storage."""

    def __init__(self, settings: ProviderSettings, staging: GcsStaging, client: httpx.AsyncClient | None = None,
                 tokens: AccessTokens | None = None) -> None:
        if settings.kind != "vertex" or not settings.project:
            raise ConfigurationError("Vertex batch prediction needs the Vertex AI provider and a project")
        self.settings = settings
        self.location = vertex_batch_location(settings.location, os.environ)
        overridden = settings.base_url != vertex_host_root(settings.location or "global")
        self.base_url = settings.base_url if overridden else vertex_host_root(self.location)
        self.parent = f"/v1/projects/{quote(settings.project, safe='')}/locations/{quote(self.location, safe='')}"
        self.staging = staging
        self._tokens = tokens
        self._client, self._owns_client = make_client(client, settings.timeout_s)

    def __repr__(self) -> str:
        return f"VertexBatchAPI(base_url={self.base_url!r}, location={self.location!r})"

    @property
    def tokens(self) -> AccessTokens:
        if self._tokens is None:
            self._tokens = shared_tokens(self.settings.gcp_credentials)
        return self._tokens

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One call with the bearer token; a 401 fetches a new token and sends it once more."""
        for attempt in (1, 2):
            token = await self.tokens.token()
            try:
                response = await send(self._client, method, f"{self.base_url}{path}",
                                      headers={"Authorization": f"Bearer {token}"},
                                      timeout=self.settings.timeout_s, **kwargs)
                return read_json(response)
            except AuthError as exc:
                if exc.http_status == 401 and attempt == 1:
                    self.tokens.invalidate(token)
                    continue
                raise explain_vertex_error(exc, self.settings, self.tokens.service_account) from None
            except ProviderError as exc:
                raise explain_vertex_error(exc, self.settings, self.tokens.service_account) from None
        raise AssertionError("unreachable")

    # -- files -------------------------------------------------------------------------------
    def input_file(self, items: Iterable[WorkItem]) -> bytes:
        lines = []
        for item in items:
            body = build_body(image_request(item), get_model(item.model))
            body["labels"] = {KEY_LABEL: label_for(item.key_stem)}
            lines.append(json.dumps({"request": body}, ensure_ascii=False, separators=(",", ":")) + "\n")
        return "".join(lines).encode()

    def result_key(self, key_stem: str) -> str:
        return label_for(key_stem)

    def read_results(self, stream: IO[bytes]) -> Iterator[ResultLine]:
        for number, raw in enumerate(stream, start=1):
            if raw.strip():
                yield result_line(number, raw)

    async def upload_jsonl(self, data: bytes, display_name: str) -> str:
        """The requests to ``{staging}/{display_name}/input.jsonl``; returns its ``gs://`` URI."""
        return await asyncio.to_thread(self.staging.put, self.staging.uri(display_name, "input.jsonl"), data)

    async def download(self, file_name: str) -> IO[bytes]:
        return await asyncio.to_thread(self.staging.open_download, file_name)

    # -- jobs --------------------------------------------------------------------------------
    async def create(self, model: str, file_name: str, display_name: str) -> BatchStatus:
        body = {
            "displayName": display_name,
            "model": f"publishers/google/models/{model}",
            "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": [file_name]}},
            "outputConfig": {"predictionsFormat": "jsonl",
                             "gcsDestination": {"outputUriPrefix": self.staging.uri(display_name, "output")}},
        }
        return status_from_job(await self._call("POST", f"{self.parent}/batchPredictionJobs", json=body))

    async def get(self, name: str) -> BatchStatus:
        return status_from_job(await self._call("GET", f"/v1/{self._job_path(name)}"))

    async def find(self, display_name: str, *, page_size: int = 100, max_pages: int = 50) -> BatchStatus | None:
        """The job with this display name, if the project has one in this region."""
        token: str | None = None
        for _ in range(max_pages):
            params = {"pageSize": str(page_size), "filter": f'display_name="{display_name}"',
                      **({"pageToken": token} if token else {})}
            payload = await self._call("GET", f"{self.parent}/batchPredictionJobs", params=params)
            for job in payload.get("batchPredictionJobs") or ():
                if isinstance(job, dict) and job.get("displayName") == display_name:
                    return status_from_job(job)
            token = payload.get("nextPageToken") or None
            if token is None:
                return None
        return None

    async def cancel(self, name: str) -> None:
        await self._call("POST", f"/v1/{self._job_path(name)}:cancel")

    def _job_path(self, name: str) -> str:
        """``projects/P/locations/L/batchPredictionJobs/ID`` from a full name or an ID."""
        if name.startswith("projects/"):
            parts = name.split("/")
            if len(parts) != 6 or parts[4] != "batchPredictionJobs":
                raise BadResponse(f"{name!r} is not a batch prediction job name")
            return "/".join(quote(p, safe="-_.") for p in parts)
        return f"{self.parent.removeprefix('/v1/')}/batchPredictionJobs/{quote(name, safe='-_.')}"

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
