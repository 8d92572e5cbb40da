"""The run's gallery artifact: thumbnails a person can scan in the Prefect UI."""
from __future__ import annotations

from collections.abc import Iterable

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from bananaflow.errors import StorageError
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.storage import ImageStore
from bananaflow.reports.gallery import build_gallery, gallery_markdown


@task(name="make-thumbnails", cache_policy=NO_CACHE, persist_result=False)
def make_gallery(rows: Iterable[ManifestRow], store: ImageStore, run_prefix: str, limit: int = 48) -> str | None:
    """Thumbnails for a sample of the run, uploaded beside its manifest; returns the
    gallery's markdown, or None (with a warning) if S3 refused: a gallery is a convenience,
    every image and the manifest are already stored."""
    try:
        entries = build_gallery(rows, store, run_prefix, limit=limit)
    except StorageError as exc:
        get_run_logger().warning("no gallery for this run: %s", exc.message)
        return None
    total = sum(1 for row in rows if row.key and row.status in ("succeeded", "skipped_exists"))
    return gallery_markdown(entries, total_images=total)


def publish_gallery(rows: Iterable[ManifestRow], store: ImageStore, run_prefix: str, limit: int = 48) -> None:
    """Create the ``bananaflow-gallery`` artifact on the flow run (not on a task run, so it
    sits with the summary on the run's Artifacts tab)."""
    markdown = make_gallery(rows, store, run_prefix, limit)
    if markdown:
        create_markdown_artifact(markdown, key="bananaflow-gallery", description="Thumbnails of this run")
