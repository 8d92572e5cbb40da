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

from bananaflow.landing.run_history import latest_run_manifest
from bananaflow.options import (
    BlockNames,
    CatalogOptions,
    DeliveryOptions,
    ExecutionOptions,
    ImageOptions,
    LimitOptions,
    QualityOptions,
    SpendOptions,
)
from bananaflow_prefect.flows.catalog_flow import catalog_to_images
from bananaflow_prefect.flows.configure import RunOptions, resolve_store


@flow(name="retry-unfinished", log_prints=True)
def retry_unfinished(
    catalog: str,
    images: ImageOptions = ImageOptions(),
    reading: CatalogOptions = CatalogOptions(),
    delivery: DeliveryOptions = DeliveryOptions(),
    limits: LimitOptions = LimitOptions(),
    spend: SpendOptions = SpendOptions(),
    quality: QualityOptions = QualityOptions(),
    execution: ExecutionOptions = ExecutionOptions(),
    blocks: BlockNames = BlockNames(),
) -> dict:
    """Re-run ``catalog`` if the newest manifest under the prefix has unfinished items.

    Takes the nightly run's options whole (same catalog, job, column map, limits, budget...)
    and forwards them unchanged, so the re-run computes the same keys.
    Returns ``{"retried": n, "last_run": ..., "summary": ...}``.
    """
    logger = get_run_logger()
    options = RunOptions(images=images, reading=reading, delivery=delivery, limits=limits, spend=spend, quality=quality,
                         execution=execution, blocks=blocks)
    store, _ = resolve_store(options)
    last = latest_run_manifest(store)
    if last is None:
        logger.info("no run manifest under %s yet: nothing to retry", store.uri(store.prefix))
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
    summary = catalog_to_images(catalog=catalog, **dict(options))
    return {"retried": len(unfinished), "last_run": last.run_dir, "summary": summary}
