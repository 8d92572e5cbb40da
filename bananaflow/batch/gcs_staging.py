"""Where Vertex batch prediction reads its requests and writes its results: Cloud Storage.

Vertex's ``batchPredictionJobs`` take JSONL only from ``gs://`` (or BigQuery) and write
``predictions.jsonl`` under a ``gs://`` prefix, so a Vertex batch run needs a staging place
there: the run's own bucket when it lands images in Cloud Storage (``gs://`` destination),
else ``BANANAFLOW_VERTEX_BATCH_STAGING=gs://bucket/prefix``. Files go under
``{staging}/{display name}/`` (``input.jsonl``, ``output/``), so a resumed run finds them by
the same name the ledger records.

Google's own client (``google-cloud-storage``) does the I/O: credentials from the same
source as Vertex AI (ADC or the GcpCredentials block), or none with ``STORAGE_EMULATOR_HOST``
(the local emulator), which the client honours by itself.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

from bananaflow.errors import ConfigurationError, StorageError

STAGING_ENV = "BANANAFLOW_VERTEX_BATCH_STAGING"
_CHUNK = 8 * 1024 * 1024


def split_gs_uri(uri: str) -> tuple[str, str]:
    """``(bucket, object path)`` of ``gs://bucket/path``; one clear line for anything else."""
    if not uri.startswith("gs://") or not uri[5:].split("/", 1)[0]:
        raise ConfigurationError(f"{uri!r} is not a Cloud Storage location (gs://bucket/prefix)")
    bucket, _, path = uri[5:].partition("/")
    if ".." in path.split("/"):
        raise ConfigurationError(f"{uri!r}: '..' is not allowed in a Cloud Storage path")
    return bucket, path.strip("/")


def staging_uri(store_uri: str, env: Mapping[str, str]) -> str:
    """The ``gs://`` prefix for a Vertex batch run whose ledger lives at ``store_uri``
    (the run's own ``runs/_batches`` place when that is in Cloud Storage)."""
    if store_uri.startswith("gs://"):
        return store_uri.rstrip("/") + "/vertex"
    configured = (env.get(STAGING_ENV) or "").strip()
    if not configured:
        raise ConfigurationError(
            "--mode batch on Vertex AI needs a Cloud Storage place for its request and result files: "
            f"land the images in gs://BUCKET (--bucket gs://...) or set {STAGING_ENV}=gs://bucket/prefix"
        )
    bucket, path = split_gs_uri(configured)
    return f"gs://{bucket}/{path}".rstrip("/")


@dataclass
class GcsStaging:
    """Upload and stream-download whole objects under one ``gs://`` prefix."""

    prefix: str
    project: str | None = None
    credentials: Any = None  # google-auth credentials; None with the emulator or ADC
    _client: Any = None

    def client(self) -> Any:
        if self._client is None:
            from google.cloud import storage

            emulator = bool(os.environ.get("STORAGE_EMULATOR_HOST"))
            self._client = storage.Client(project=self.project,
                                          credentials=None if emulator else self.credentials)
        return self._client

    def uri(self, *parts: str) -> str:
        return "/".join([self.prefix.rstrip("/"), *parts])

    def put(self, uri: str, data: bytes, content_type: str = "application/jsonl") -> str:
        bucket, path = split_gs_uri(uri)
        try:
            self.client().bucket(bucket).blob(path).upload_from_string(data, content_type=content_type)
        except Exception as exc:  # noqa: BLE001 - google-api-core's tree, mapped to ours
            raise _storage_error(exc, "upload", uri) from None
        return uri

    def open_download(self, uri: str) -> IO[bytes]:
        """The object streamed to a temporary file (results run to hundreds of MB), rewound."""
        bucket, path = split_gs_uri(uri)
        sink = tempfile.TemporaryFile()
        try:
            blob = self.client().bucket(bucket).blob(path, chunk_size=_CHUNK)
            blob.download_to_file(sink)
        except Exception as exc:  # noqa: BLE001 - google-api-core's tree, mapped to ours
            sink.close()
            raise _storage_error(exc, "download", uri) from None
        sink.seek(0)
        return sink


def _storage_error(exc: BaseException, action: str, uri: str) -> StorageError:
    code = getattr(exc, "code", None)
    why = {403: "permission denied (grant roles/storage.objectAdmin on the bucket)", 404: "not found"}.get(
        code if isinstance(code, int) else 0, type(exc).__name__)
    return StorageError(f"Cloud Storage {action} of {uri} failed: {why}")
