"""The simulator's Files API storage and Batch-mode jobs, in memory.

A batch moves pending → running → its end state by the clock (``batch_turnaround_s``,
read when the batch is polled), so a test can create a batch with a long turnaround and
shorten it later, as happens when a real batch finally runs. The end state is fixed the
first time it is observed and never changes again; results are rendered once, then.
"""
from __future__ import annotations

import base64
import hashlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

PENDING, RUNNING = "BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"
SUCCEEDED, FAILED = "BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED"
CANCELLED, EXPIRED = "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED, EXPIRED})
END_STATES = {"succeeded": SUCCEEDED, "failed": FAILED, "expired": EXPIRED}
FILE_TTL = timedelta(hours=48)  # uploaded files live 48 h on the real service


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class StoredFile:
    """One file of the Files API: uploaded by a client, or generated (batch results)."""

    id: str
    data: bytes = field(repr=False)
    mime_type: str
    display_name: str
    source: str  # "UPLOADED" or "GENERATED"
    created: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def name(self) -> str:
        return f"files/{self.id}"

    def resource(self, base_url: str) -> dict[str, Any]:
        """The ``File`` resource as ``files.get`` returns it."""
        out: dict[str, Any] = {
            "name": self.name,
            "mimeType": self.mime_type,
            "sizeBytes": str(len(self.data)),
            "createTime": rfc3339(self.created),
            "updateTime": rfc3339(self.created),
            "expirationTime": rfc3339(self.created + FILE_TTL),
            "sha256Hash": base64.b64encode(hashlib.sha256(self.data).hexdigest().encode()).decode(),
            "uri": f"{base_url}/v1beta/{self.name}",
            "state": "ACTIVE",
            "source": self.source,
        }
        if self.display_name:
            out["displayName"] = self.display_name
        if self.source == "GENERATED":
            out["downloadUri"] = f"{base_url}/download/v1beta/{self.name}:download?alt=media"
        return out


@dataclass
class UploadSession:
    """A resumable upload between ``start`` and ``finalize``."""

    display_name: str
    mime_type: str
    declared_size: int | None
    received: bytearray = field(default_factory=bytearray)


@dataclass
class BatchRequest:
    """One request of a batch: its key (file mode) or metadata (inline mode), and either
    the raw ``GenerateContentRequest`` or the reason it could not be read."""

    key: str | None
    metadata: dict[str, Any] | None
    request: dict[str, Any] | None
    problem: str | None = None


@dataclass
class SimBatch:
    id: str
    model: str
    display_name: str
    input_config: dict[str, Any]
    requests: list[BatchRequest]
    inline: bool
    created_mono: float = field(default_factory=time.monotonic)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    end_state: str | None = None
    ended: datetime | None = None
    responses_file: str | None = None
    inlined_responses: list[dict[str, Any]] | None = None
    succeeded: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        return f"batches/{self.id}"

    def state_at(self, turnaround_s: float, now: float) -> str:
        """The state by the clock, before any end state is fixed."""
        if self.end_state is not None:
            return self.end_state
        elapsed = now - self.created_mono
        if elapsed >= turnaround_s:
            return "due"
        return PENDING if elapsed < turnaround_s / 4 else RUNNING

    def operation(self, state: str, base_url: str) -> dict[str, Any]:
        """The long-running operation ``batches.get`` and ``batchGenerateContent`` return."""
        total = len(self.requests)
        done = state in TERMINAL
        stats = {"requestCount": str(total)}
        if state == SUCCEEDED:
            stats.update(successfulRequestCount=str(self.succeeded), failedRequestCount=str(self.failed))
        else:
            stats["pendingRequestCount"] = str(total)
        now = datetime.now(UTC)
        metadata: dict[str, Any] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            "model": f"models/{self.model}",
            "displayName": self.display_name,
            "inputConfig": self.input_config,
            "createTime": rfc3339(self.created),
            "updateTime": rfc3339(self.ended or now),
            "batchStats": stats,
            "state": state,
            "name": self.name,
        }
        body: dict[str, Any] = {"name": self.name, "metadata": metadata, "done": done}
        if self.ended is not None:
            metadata["endTime"] = rfc3339(self.ended)
        if state == SUCCEEDED:
            output: dict[str, Any]
            if self.inline:
                output = {"inlinedResponses": {"inlinedResponses": self.inlined_responses or []}}
            else:
                output = {"responsesFile": self.responses_file}
            metadata["output"] = output
            body["response"] = {
                "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput",
                **output,
            }
        elif state == FAILED:
            body["error"] = {"code": 13, "message": "Batch failed: an internal error has occurred."}
        return body


class BatchStore:
    """Files, upload sessions and batches of one simulator, plus how many batches were
    created: the count tests read to prove a resumed run did not create a second one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self.files: dict[str, StoredFile] = {}
            self.sessions: dict[str, UploadSession] = {}
            self.batches: dict[str, SimBatch] = {}
            self.vertex_jobs: dict[str, Any] = {}  # vertex_batch_routes.VertexJob by id
            self.batches_created = 0
            self.files_uploaded = 0
            self.files_downloaded = 0
            self.cancels = 0

    def counters(self) -> dict[str, int]:
        with self._lock:
            return {
                "batches_created": self.batches_created,
                "files_uploaded": self.files_uploaded,
                "files_downloaded": self.files_downloaded,
                "batch_cancels": self.cancels,
            }

    def start_upload(self, display_name: str, mime_type: str, declared_size: int | None) -> str:
        upload_id = uuid.uuid4().hex
        with self._lock:
            self.sessions[upload_id] = UploadSession(display_name, mime_type, declared_size)
        return upload_id

    def session(self, upload_id: str) -> UploadSession | None:
        with self._lock:
            return self.sessions.get(upload_id)

    def finish_upload(self, upload_id: str) -> StoredFile:
        with self._lock:
            session = self.sessions.pop(upload_id)
            stored = StoredFile(uuid.uuid4().hex[:12], bytes(session.received), session.mime_type,
                                session.display_name, "UPLOADED")
            self.files[stored.id] = stored
            self.files_uploaded += 1
        return stored

    def add_generated(self, data: bytes, mime_type: str, display_name: str) -> StoredFile:
        stored = StoredFile(uuid.uuid4().hex[:12], data, mime_type, display_name, "GENERATED")
        with self._lock:
            self.files[stored.id] = stored
        return stored

    def file(self, file_id: str) -> StoredFile | None:
        with self._lock:
            return self.files.get(file_id)

    def count_download(self) -> None:
        with self._lock:
            self.files_downloaded += 1

    def add_batch(self, batch: SimBatch) -> None:
        with self._lock:
            self.batches[batch.id] = batch
            self.batches_created += 1

    def add_vertex_job(self, job_id: str, job: Any) -> None:
        """A Vertex ``batchPredictionJob``, counted in the same ``batches_created``."""
        with self._lock:
            self.vertex_jobs[job_id] = job
            self.batches_created += 1

    def batch(self, batch_id: str) -> SimBatch | None:
        with self._lock:
            return self.batches.get(batch_id)

    def all_batches(self) -> list[SimBatch]:
        """Every batch, oldest first."""
        with self._lock:
            return list(self.batches.values())

    def count_cancel(self) -> None:
        with self._lock:
            self.cancels += 1
