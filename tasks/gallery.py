"""The run's gallery artifact: thumbnails a person can scan in the Prefect UI."""
from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from bananaflow.errors import StorageError
from bananaflow.gallery import build_gallery, gallery_markdown
from bananaflow.manifest import ManifestRow
from bananaflow.storage import ImageStore


@task(name="publish-gallery", cache_policy=None, persist_result=False)
def publish_gallery(rows: list[ManifestRow], store: ImageStore, run_prefix: str, limit: int = 48) -> int:
    """Create the ``bananaflow-gallery`` artifact; returns how many thumbnails it shows.

    A gallery is a convenience: if S3 refuses a thumbnail the run still succeeds, with a
    warning, because every image and the manifest are already stored.
    """
    try:
        entries = build_gallery(rows, store, run_prefix, limit=limit)
    except StorageError as exc:
        get_run_logger().warning("no gallery for this run: %s", exc.message)
        return 0
    total = sum(1 for row in rows if row.key and row.status in ("succeeded", "skipped_exists"))
    create_markdown_artifact(
        gallery_markdown(entries, total_images=total), key="bananaflow-gallery", description="Thumbnails of this run"
    )
    return len(entries)
