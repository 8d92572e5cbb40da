"""The hourly retry: finish what the last run left ``failed`` or ``deferred``.

Object keys are fixed before generation and a key that exists is never paid for again, so
"retry the unfinished items" is simply "run the same catalog again": every item that
already has its image ends ``skipped_exists`` after one S3 listing, and only the
unfinished ones reach the provider. This flow first reads the newest run manifest in the
bucket and does nothing at all when it has no ``failed``/``deferred`` rows, so an hourly
schedule costs one S3 GET on a good day.
"""
from __future__ import annotations

from prefect import flow, get_run_logger

from bananaflow.reports.run_history import latest_run_manifest
from bananaflow_prefect.flows.catalog_flow import catalog_to_images
from bananaflow_prefect.flows.store_config import resolve_store


@flow(name="retry-unfinished", log_prints=True)
def retry_unfinished(
    catalog: str,
    bucket: str | None = None,
    prefix: str = "bananaflow",
    template: str | None = None,
    model: str | None = None,
    image_size: str = "1K",
    aspect_ratio: str = "1:1",
    variant: str = "main",
    concurrency: int = 8,
    requests_per_minute: float | None = None,
    provider_block: str | None = None,
    store_block: str | None = None,
    limits_block: str | None = None,
    job: str | None = None,
) -> dict:
    """Re-run ``catalog`` if the newest manifest under the prefix has unfinished items.

    Takes the nightly run's parameters (same catalog, bucket, template, size...), so the
    re-run computes the same keys. Returns ``{"retried": n, "last_run": ..., "summary": ...}``.
    """
    logger = get_run_logger()
    store = resolve_store(bucket, prefix, store_block)
    last = latest_run_manifest(store)
    if last is None:
        logger.info("no run manifest under s3://%s/%s yet: nothing to retry", store.bucket, store.prefix)
        return {"retried": 0, "last_run": None, "summary": None}
    unfinished = last.to_retry
    if not unfinished:
        logger.info("the last run (%s) left nothing failed or deferred: nothing to retry", last.run_dir)
        return {"retried": 0, "last_run": last.run_dir, "summary": None}
    logger.info(
        "the last run (%s) left %d items unfinished (%s); running the catalog again",
        last.run_dir,
        len(unfinished),
        ", ".join(f"{n} {s}" for s, n in sorted(last.counts.items()) if s in ("failed", "deferred")),
    )
    summary = catalog_to_images(
        catalog=catalog,
        bucket=bucket,
        prefix=prefix,
        template=template,
        model=model,
        image_size=image_size,
        aspect_ratio=aspect_ratio,
        variant=variant,
        concurrency=concurrency,
        requests_per_minute=requests_per_minute,
        provider_block=provider_block,
        store_block=store_block,
        limits_block=limits_block,
        job=job,
    )
    return {"retried": len(unfinished), "last_run": last.run_dir, "summary": summary}
