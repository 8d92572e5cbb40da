"""Catalog in, product images and a manifest out: the flow users run nightly."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from prefect import flow, get_run_logger, unmapped
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.urls import url_for

from bananaflow.admission import admission_for_run
from bananaflow.errors import ConfigurationError
from bananaflow.manifest import ManifestRow
from bananaflow.models import default_model_id
from bananaflow.progress import ProgressTracker, announce
from bananaflow.provider_settings import ProviderSettings
from bananaflow.ratelimit import RateController
from bananaflow.retry import RetryPolicy
from bananaflow.spool import Spool
from bananaflow.storage import ImageStore
from bananaflow.summary import summarize
from bananaflow.work import JobOptions, WorkItem, chunk_size_for, chunked
from blocks import GenerationLimits, ImageProviderBlock, ImageStoreBlock
from tasks import resources
from tasks.generation import generate_images
from tasks.planning import plan
from tasks.reporting import ProgressArtifact, publish_summary, write_outputs

#: Threads that run chunk tasks; the rate controller, not this number, bounds requests.
TASK_THREADS = 16


def default_spool_dir() -> Path:
    import os

    return Path(os.environ.get("BANANAFLOW_SPOOL_DIR") or Path.home() / ".cache" / "bananaflow" / "spool")


@flow(name="catalog-to-images", task_runner=ThreadPoolTaskRunner(max_workers=TASK_THREADS), log_prints=True)
def catalog_to_images(
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
    encoding: str | None = None,
    provider_block: str | None = None,
    store_block: str | None = None,
    limits_block: str | None = None,
    images_per_minute: float | None = None,
    requests_per_day: int | None = None,
    spend_per_10min_usd: float | None = None,
    adaptive: bool = False,
    fallback_models: list[str] | None = None,
    allow_fallback: bool = True,
    max_cost_usd: float | None = None,
) -> dict:
    """Generate one image per catalog product and land it in S3 with a manifest.

    Configuration comes from the named Prefect blocks when given, otherwise from the
    environment (GEMINI_API_KEY, GOOGLE_GEMINI_BASE_URL, AWS_ENDPOINT_URL_S3, ...).
    Returns the run summary as a dict.
    """
    logger = get_run_logger()
    t0 = time.monotonic()
    run_id = str(flow_run.id)

    provider_settings = (
        ImageProviderBlock.load(provider_block).to_settings() if provider_block else ProviderSettings.from_env(model=model)
    )
    model = model or provider_settings.model or default_model_id()
    if store_block:
        store_config = ImageStoreBlock.load(store_block)
        store, bucket, prefix = store_config.to_store(), store_config.bucket, store_config.prefix
    elif bucket:
        store = ImageStore(bucket, prefix)
    else:
        raise ConfigurationError("no bucket: pass bucket=... or store_block=... (an ImageStoreBlock name)")
    if limits_block:
        limits = GenerationLimits.load(limits_block)
        controller, policy = limits.to_controller(), limits.to_policy()
        images_per_minute = images_per_minute or limits.images_per_minute
        requests_per_day = requests_per_day or limits.requests_per_day
        spend_per_10min_usd = spend_per_10min_usd or limits.spend_per_10min_usd
        adaptive = adaptive or limits.adaptive
    else:
        controller, policy = RateController(concurrency, requests_per_minute), RetryPolicy()
    options = JobOptions(model=model, image_size=image_size, aspect_ratio=aspect_ratio, variant=variant)
    options.validate()
    admission = admission_for_run(
        max_in_flight=controller.max_in_flight or concurrency, requests_per_minute=controller.requests_per_minute,
        images_per_minute=images_per_minute, requests_per_day=requests_per_day,
        spend_per_10min_usd=spend_per_10min_usd, adaptive=adaptive, fallback_models=fallback_models or (),
        allow_fallback=allow_fallback, variant=variant, max_cost_usd=max_cost_usd,
    )
    for fallback_model in fallback_models or ():
        JobOptions(model=fallback_model, image_size=image_size, aspect_ratio=aspect_ratio).validate()

    store.ensure_bucket()
    spool = Spool(default_spool_dir() / bucket)
    if spool.state().pending:
        logger.info("uploading %d images kept in the local spool from an earlier run", spool.drain(store))

    work = plan(catalog, template, options, prefix, encoding)
    logger.info(
        "%d products accepted, %d rejected; %d images to make with %s (%s, %s)",
        len(work.items), len(work.rejected), len(work.items), model, aspect_ratio, image_size,
    )

    tracker = ProgressTracker(len(work.items))
    announce(tracker)
    artifact = ProgressArtifact(tracker)
    resources.register(run_id, resources.RunResources(
        provider_settings, store, controller, policy, spool, tracker, extra={"admission": admission}))
    try:
        chunks = chunked(work.items, chunk_size_for(len(work.items), controller.max_in_flight or concurrency))
        futures = generate_images.map(
            run_id=unmapped(run_id), items=chunks, label=[f"{i + 1}/{len(chunks)}" for i in range(len(chunks))]
        )
        rows: list[ManifestRow] = []
        for chunk, future in zip(chunks, futures):
            rows.extend(_rows_of(chunk, future, run_id))
    finally:
        resources.release(run_id)
        admission.keep_learned_limits()
    artifact.flush()

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_prefix = "/".join(p for p in (prefix.strip("/"), "runs", f"{stamp}-{flow_run.name}") if p)
    manifest_uris, rejected_uri = write_outputs(rows, work.rejected, store, run_prefix)

    summary = summarize(
        rows, run_id=run_id, rejected=len(work.rejected), wall_s=time.monotonic() - t0, bucket=bucket, prefix=prefix
    )
    summary.manifest = manifest_uris
    summary.rejected_uri = rejected_uri
    summary.flow_run_url = url_for("flow-run", obj_id=run_id)
    summary.limits = admission.report()
    spool_state = spool.state()
    if spool_state.pending:
        logger.warning("%d images wait in the local spool %s for S3 to return", spool_state.pending, spool_state.directory)
    publish_summary(summary)
    return summary.to_dict()


def _rows_of(chunk: list[WorkItem], future, run_id: str) -> list[ManifestRow]:  # noqa: ANN001
    """A chunk's rows; if the task itself died (not an item), its items still get rows."""
    future.wait()
    state = future.state
    if state.is_completed():
        return future.result()
    message = f"generation task ended {state.name}: {state.message or ''}".strip()
    return [
        ManifestRow(
            run_id=run_id,
            row_number=item.row_number,
            sku=item.sku,
            variant=item.variant,
            status="failed",
            error_class="TaskFailed",
            error_message=message[:500],
            model=item.model,
            image_size=item.image_size,
            aspect_ratio=item.aspect_ratio,
            prompt_sha256=item.prompt_sha256,
        )
        for item in chunk
    ]
