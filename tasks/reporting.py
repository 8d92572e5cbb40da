"""Manifests, summaries and artifacts: what a person sees of a run."""
from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from uuid import UUID

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.utilities.urls import url_for

from bananaflow.catalog import Rejection, rejections_to_csv
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.manifest_stream import upload_manifest, write_manifest_files
from bananaflow.landing.rowlog import RowLog
from bananaflow.landing.storage import ImageStore
from bananaflow.reports.progress import ProgressTracker
from bananaflow.reports.summary import RunSummary
from bananaflow.secrets import mask_url

#: Rows per manifest batch (one pandas frame and one Parquet row group at a time). The end of
#: a run peaked on the largest batch, pyarrow's pool keeping what it took: 5,000-row batches
#: made an 8,000-item run end 20 MB above a 2,000-item one; 1,000-row batches end level.
MANIFEST_BATCH_ROWS = 1000


@task(name="write-manifest", cache_policy=NO_CACHE, persist_result=False)
def write_outputs(
    rows: RowLog | list[ManifestRow], rejected: list[Rejection], store: ImageStore, run_prefix: str
) -> tuple[dict[str, str], str | None]:
    """Write the manifest (CSV + Parquet) and rejected rows beside it; returns their URIs.
    The manifest is written batch by batch to local files, then uploaded."""
    with tempfile.TemporaryDirectory(prefix="bananaflow-manifest-") as directory:
        uris = upload_manifest(write_manifest_files(row_batches(rows), directory), store, run_prefix)
    rejected_uri = None
    if rejected:
        key = f"{run_prefix}/rejected.csv"
        store.put_bytes(key, rejections_to_csv(rejected), "text/csv")
        rejected_uri = store.uri(key)
    return uris, rejected_uri


def row_batches(rows: RowLog | list[ManifestRow], size: int = MANIFEST_BATCH_ROWS) -> Iterator[list[ManifestRow]]:
    """The rows, ``size`` at a time: what the manifest writer holds at once."""
    if isinstance(rows, RowLog):
        yield from rows.batches(size)
    else:
        for start in range(0, len(rows), size):
            yield rows[start : start + size]


def publish_summary(summary: RunSummary) -> None:
    """The end-of-run summary and failures table, as artifacts on the flow run."""
    for failure in summary.failures:  # a link from each failed product to its task run's logs
        if failure.get("task_run_id"):
            failure["task_run_url"] = mask_url(url_for("task-run", obj_id=failure["task_run_id"]) or "")
    create_markdown_artifact(summary.to_markdown(), key="bananaflow-summary", description="bananaflow run summary")
    if summary.failures:
        create_table_artifact(summary.failures_table(), key="bananaflow-failures",
                              description="Items that did not succeed")


class ProgressArtifact:
    """A Prefect progress artifact that follows a ``ProgressTracker``, updated at most once
    per ``interval_s`` (every update is an API call) and once more at the end."""

    def __init__(self, tracker: ProgressTracker, interval_s: float = 1.0) -> None:
        self.tracker = tracker
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._last = 0.0
        artifact_id = create_progress_artifact(0.0, key="bananaflow-progress", description=f"0 of {tracker.total} images")
        assert isinstance(artifact_id, UUID)  # the synchronous call returns the id, not a coroutine
        self.artifact_id = artifact_id
        tracker.subscribe(self._on_progress)

    def _on_progress(self, tracker: ProgressTracker) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < self.interval_s and tracker.done < tracker.total:
                return
            self._last = now
        self.flush()

    def flush(self) -> None:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.tracker.counts().items()))
        update_progress_artifact(
            self.artifact_id,
            progress=round(100 * self.tracker.fraction, 1),
            description=f"{self.tracker.done} of {self.tracker.total} images" + (f" ({counts})" if counts else ""),
        )
