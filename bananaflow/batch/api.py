"""Google's Batch mode and Files API over HTTP: the five calls a batch run needs.

Same key hygiene as realtime calls (one credential, chosen by ``auth_style``, never in a
message), same error classification (``providers.classify``), so a 429 or a 503 while
creating or polling a batch is the same ``ProviderError`` the retry rules already know.
Shapes follow the Batch section of the API reference: a resumable upload
(``X-Goog-Upload-Command: start`` then ``upload, finalize``), ``batchGenerateContent``
with ``inputConfig.fileName``, an operation polled at ``GET /v1beta/batches/ID`` whose
results are a JSONL file fetched from ``/download/v1beta/files/ID:download?alt=media``.
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Protocol
from urllib.parse import quote

import httpx

from bananaflow.batch.jsonl import ResultLine, input_file, read_results
from bananaflow.errors import BadResponse, ProviderError
from bananaflow.planning.work import WorkItem
from bananaflow.providers._http import credentials, int_field, make_client, read_json, send
from bananaflow.providers.classify import classify_response, classify_transport_error
from bananaflow.providers.settings import ProviderSettings

SUCCEEDED = "BATCH_STATE_SUCCEEDED"
#: Vertex AI's job states that carry results (a partly succeeded job has a line per request).
VERTEX_SUCCEEDED = frozenset({"JOB_STATE_SUCCEEDED", "JOB_STATE_PARTIALLY_SUCCEEDED"})
#: End states of both services; any other state (including ones Google adds later) means "keep polling".
TERMINAL_STATES = frozenset({SUCCEEDED, "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED",
                             *VERTEX_SUCCEEDED, "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"})
_CHUNK = 8 * 1024 * 1024  # the upload granularity Google announces


@dataclass(frozen=True)
class BatchStatus:
    """What one poll of a batch says. ``responses_file`` is set once it succeeded."""

    name: str
    state: str
    done: bool
    responses_file: str | None = None
    request_count: int = 0
    error_message: str = ""

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES or (self.done and self.state not in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"))

    @property
    def succeeded(self) -> bool:
        return self.state == SUCCEEDED or self.state in VERTEX_SUCCEEDED


class BatchAPI(Protocol):
    """What ``BatchRunner`` needs of a batch service: AI Studio's (``GeminiBatchAPI``) or
    Vertex AI's (``bananaflow.batch.vertex_api.VertexBatchAPI``)."""

    def input_file(self, items: Iterable[WorkItem]) -> bytes: ...
    def result_key(self, key_stem: str) -> str: ...
    def read_results(self, stream: IO[bytes]) -> Iterator[ResultLine]: ...
    async def upload_jsonl(self, data: bytes, display_name: str) -> str: ...
    async def create(self, model: str, file_name: str, display_name: str) -> BatchStatus: ...
    async def get(self, name: str) -> BatchStatus: ...
    async def find(self, display_name: str) -> BatchStatus | None: ...
    async def cancel(self, name: str) -> None: ...
    async def download(self, file_name: str) -> IO[bytes]: ...
    async def aclose(self) -> None: ...


def status_from_operation(payload: dict[str, Any]) -> BatchStatus:
    """Read the long-running operation. Output is looked for in ``response`` (the
    reference) and in ``metadata.output`` (where the SDK reads it): servers send both."""
    metadata, output = _object(payload.get("metadata")), _object(payload.get("response"))
    if not output.get("responsesFile") and isinstance(metadata.get("output"), dict):
        output = metadata["output"]
    error, stats = _object(payload.get("error")), _object(metadata.get("batchStats"))
    return BatchStatus(
        name=str(payload.get("name") or metadata.get("name") or ""),
        state=str(metadata.get("state") or payload.get("state") or "BATCH_STATE_UNSPECIFIED"),
        done=bool(payload.get("done")),
        responses_file=output.get("responsesFile") or None,
        request_count=int_field(stats, "requestCount"),
        error_message=str(error.get("message") or ""),
    )


def _object(value: object) -> dict[str, Any]:
    """A JSON object of the payload, or an empty one where the server sent none (or another type)."""
    return value if isinstance(value, dict) else {}


class GeminiBatchAPI:
    """Files upload/download and batch create/get/cancel against ``settings.base_url``."""

    def __init__(self, settings: ProviderSettings, client: httpx.AsyncClient | None = None) -> None:
        if settings.kind != "gemini":
            from bananaflow.errors import ConfigurationError

            raise ConfigurationError(
                "batch mode needs Google's native Gemini API (BANANAFLOW_PROVIDER=gemini); "
                "OpenAI-compatible relays have no Batch mode: use --mode realtime"
            )
        self.settings = settings
        self.base_url = settings.base_url
        self._client, self._owns_client = make_client(client, settings.timeout_s)

    def __repr__(self) -> str:
        return f"GeminiBatchAPI(base_url={self.base_url!r})"

    # -- the files: AI Studio's JSONL names each line by its item's key stem ----------------
    def input_file(self, items: Iterable[WorkItem]) -> bytes:
        return input_file(items)

    def result_key(self, key_stem: str) -> str:
        """What a result line carries to name the item of ``key_stem``."""
        return key_stem

    def read_results(self, stream: IO[bytes]) -> Iterator[ResultLine]:
        return read_results(stream)

    async def _call(self, method: str, path: str, *, model: str | None = None, **kwargs: Any) -> httpx.Response:
        headers, params = credentials(self.settings)
        headers.update(kwargs.pop("headers", {}))
        params.update(kwargs.pop("params", {}))
        return await send(self._client, method, f"{self.base_url}{path}", model=model, headers=headers,
                          params=params, timeout=self.settings.timeout_s, **kwargs)

    async def upload_jsonl(self, data: bytes, display_name: str) -> str:
        """Upload a JSONL file with the resumable protocol; returns its ``files/ID`` name."""
        start = await self._call(
            "POST",
            "/upload/v1beta/files",
            json={"file": {"displayName": display_name, "mimeType": "application/jsonl"}},
            headers={
                "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start",
                "X-Goog-Upload-Header-Content-Length": str(len(data)),
                "X-Goog-Upload-Header-Content-Type": "application/jsonl",
            },
        )
        upload_url = start.headers.get("x-goog-upload-url")
        if not upload_url:
            raise BadResponse("the Files API did not return an upload URL (X-Goog-Upload-URL)")
        offset, response = 0, None
        while True:
            chunk = data[offset : offset + _CHUNK]
            last = offset + len(chunk) >= len(data)
            response = await self._upload_chunk(upload_url, chunk, offset, last)
            offset += len(chunk)
            if last:
                break
        payload = read_json(response)
        name = (payload.get("file") or {}).get("name") if isinstance(payload.get("file"), dict) else None
        if response.headers.get("x-goog-upload-status") != "final" or not name:
            raise BadResponse("the Files API did not finalize the upload")
        return str(name)

    async def _upload_chunk(self, url: str, chunk: bytes, offset: int, last: bool) -> httpx.Response:
        """One chunk to the session URL. The URL is itself the credential (Google's and the
        SDK's way), so no key is attached: it never leaves for another host."""
        headers = {
            "X-Goog-Upload-Command": "upload, finalize" if last else "upload",
            "X-Goog-Upload-Offset": str(offset),
        }
        return await send(self._client, "POST", url, content=chunk, headers=headers, timeout=self.settings.timeout_s)

    async def create(self, model: str, file_name: str, display_name: str) -> BatchStatus:
        """``batchGenerateContent`` over an uploaded JSONL file."""
        body = {"batch": {"displayName": display_name, "inputConfig": {"fileName": file_name}}}
        response = await self._call(
            "POST", f"/v1beta/models/{quote(model, safe='.-_')}:batchGenerateContent", model=model, json=body
        )
        return status_from_operation(read_json(response, model=model))

    async def get(self, name: str) -> BatchStatus:
        response = await self._call("GET", f"/v1beta/{_resource(name, 'batches')}")
        return status_from_operation(read_json(response))

    async def find(self, display_name: str, *, page_size: int = 100, max_pages: int = 50) -> BatchStatus | None:
        """The newest batch with this display name, if the project has one: how a record
        written just before a crash learns whether its create call went through."""
        token: str | None = None
        for _ in range(max_pages):
            params = {"pageSize": str(page_size), **({"pageToken": token} if token else {})}
            payload = read_json(await self._call("GET", "/v1beta/batches", params=params))
            for operation in payload.get("operations") or ():
                meta = operation.get("metadata") if isinstance(operation, dict) else None
                if isinstance(meta, dict) and meta.get("displayName") == display_name:
                    return status_from_operation(operation)
            token = payload.get("nextPageToken") or None
            if token is None:
                return None
        return None

    async def cancel(self, name: str) -> None:
        await self._call("POST", f"/v1beta/{_resource(name, 'batches')}:cancel")

    async def download(self, file_name: str) -> IO[bytes]:
        """The results file, streamed to a temporary file (results of image batches run
        to hundreds of MB) and rewound; the caller closes it."""
        headers, params = credentials(self.settings)
        url = f"{self.base_url}/download/v1beta/{_resource(file_name, 'files')}:download"
        sink = tempfile.TemporaryFile()
        error: ProviderError | None = None
        try:
            async with self._client.stream("GET", url, headers=headers, params={**params, "alt": "media"},
                                           timeout=self.settings.timeout_s) as response:
                if not response.is_success:
                    await response.aread()
                    error = classify_response(response)
                else:
                    async for block in response.aiter_bytes(1024 * 1024):
                        sink.write(block)
        except httpx.HTTPError as exc:
            error = classify_transport_error(exc)
        if error is not None:
            sink.close()
            raise error
        sink.seek(0)
        return sink

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _resource(name: str, collection: str) -> str:
    """``batches/ID`` from ``ID`` or ``batches/ID``, with the ID path-quoted."""
    ident = name.split("/", 1)[1] if name.startswith(f"{collection}/") else name
    return f"{collection}/{quote(ident, safe='-_.')}"
