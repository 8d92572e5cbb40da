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

from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.run_history import latest_run_manifest
from bananaflow.landing.storage import ImageStore
from bananaflow.limits.budget import worst_case_cost_usd
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
from bananaflow_prefect.flows.configure import (
    RunOptions,
    check_deployment_inputs,
    daily_budget_of,
    open_run_budget,
    resolve_store,
)


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
    check_deployment_inputs(catalog, options)
    store, _ = resolve_store(options)
    last = latest_run_manifest(store)
    if last is None:
        logger.info("no run manifest under %s yet: nothing to retry", store.uri(store.prefix))
        return {"retried": 0, "last_run": None, "summary": None}
    unfinished = last.to_retry
    if not unfinished:
        logger.info("the last run (%s) left nothing failed or deferred: nothing to retry", last.run_dir)
        return {"retried": 0, "last_run": last.run_dir, "summary": None}
    if all(row.error_class == "BudgetExhausted" for row in unfinished) and not _budget_has_room(catalog, options, store,
                                                                                               unfinished):
        logger.info("the last run (%s) left %d items deferred for budget and the budget has no room for one yet: "
                    "nothing to retry until it renews or is raised", last.run_dir, len(unfinished))
        return {"retried": 0, "last_run": last.run_dir, "summary": None, "waiting_for_budget": len(unfinished)}
    logger.info(
        "the last run (%s) left %d items unfinished (%s); running the catalog again",
        last.run_dir,
        len(unfinished),
        ", ".join(f"{n} {s}" for s, n in sorted(last.counts.items()) if s in ("failed", "deferred")),
    )
    summary = catalog_to_images(catalog=catalog, **dict(options))
    return {"retried": len(unfinished), "last_run": last.run_dir, "summary": summary}


def _budget_has_room(catalog: str, options: RunOptions, store: ImageStore, deferred: list[ManifestRow]) -> bool:
    """Whether the accounts these items were deferred by (the work's ``--max-cost``, the job's
    ``--daily-budget``) could take one of them now: a raised cap, or a new day, makes room."""
    from bananaflow.providers.models import default_model_id, get_model

    budget = open_run_budget(catalog, options, store, daily_budget_of(options))
    if budget is None:  # the caps were removed: all the room there is
        return True
    cheapest = min(worst_case_cost_usd(get_model(row.model or default_model_id()), row.image_size or "1K")
                   for row in deferred)
    return budget.can_afford(cheapest)
