"""Catalog in, product images and a manifest out: the flow users run nightly."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from prefect import flow, get_run_logger, unmapped
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.urls import url_for

from bananaflow.limits.admission import admission_for_run
from bananaflow.batch import choose_mode
from bananaflow.batch.runner import PollPolicy
from bananaflow.batch.sizing import BatchLimits
from bananaflow.planning.delta import split_previous
from bananaflow.landing.claims import KeyClaims
from bananaflow.errors import ConfigurationError, StorageError
from bananaflow.planning.jobspec import build_job
from bananaflow.reports.manifest import ManifestRow, write_local
from bananaflow.providers.models import default_model_id
from bananaflow.reports.progress import ProgressTracker, announce
from bananaflow.providers.settings import ProviderSettings
from bananaflow.catalog.references import require_edit_mode
from bananaflow.limits.controller import RateController
from bananaflow.generation.retry import RetryPolicy
from bananaflow.secrets import install_log_redaction
from bananaflow.planning.sharding import Shard
from bananaflow.landing.spool import Spool
from bananaflow.landing.storage import ImageStore
from bananaflow.reports.summary import summarize
from bananaflow.planning.work import JobOptions, WorkItem, chunk_size_for, chunked, waves
from bananaflow_prefect.blocks import GenerationLimits, ImageProviderBlock, ImageStoreBlock
from bananaflow_prefect.tasks import resources
from bananaflow_prefect.tasks.batch import BatchSettings, generate_in_batches
from bananaflow_prefect.tasks.events import emit_batch_completed
from bananaflow_prefect.tasks.gallery import publish_gallery
from bananaflow_prefect.tasks.generation import generate_images
from bananaflow_prefect.tasks.guard import WorkerGuard, worker_guard
from bananaflow_prefect.tasks.planning import plan
from bananaflow_prefect.tasks.reporting import ProgressArtifact, publish_summary, write_outputs
from bananaflow_prefect.tasks.writeback import write_back

#: Threads that run chunk tasks; the rate controller, not this number, bounds requests.
TASK_THREADS = 16


def default_spool_dir() -> Path:
    import os

    return Path(os.environ.get("BANANAFLOW_SPOOL_DIR") or Path.home() / ".cache" / "bananaflow" / "spool")


def spool_max_bytes() -> int:
    """``BANANAFLOW_SPOOL_MAX_MB`` (default 2048): how much disk paid-for images may hold."""
    import os

    try:
        return int(float(os.environ.get("BANANAFLOW_SPOOL_MAX_MB") or 2048) * 1024 * 1024)
    except ValueError:
        raise ConfigurationError("BANANAFLOW_SPOOL_MAX_MB must be a number of megabytes") from None


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
    mode: str | None = None,
    deadline_hours: float | None = None,
    batch_max_items: int = 500,
    batch_poll_max_s: float = 300.0,
    job: str | dict | None = None,
    catalog_preset: str | None = None,
    column_map: dict[str, str] | None = None,
    previous_manifest: str | None = None,
    writeback: str | None = None,
    public_base_url: str | None = None,
    output_preset: str | None = None,
    shard_index: int = 0,
    shard_count: int = 1,
    images_per_minute: float | None = None,
    requests_per_day: int | None = None,
    spend_per_10min_usd: float | None = None,
    adaptive: bool = False,
    fallback_models: list[str] | None = None,
    allow_fallback: bool = True,
    max_cost_usd: float | None = None,
) -> dict:
    """Generate the images of a job spec (or one image per product from the single-template
    parameters) for every catalog product and land them in S3 with a manifest.

    ``job`` is a YAML/TOML job spec path (or the spec itself as a dict); ``previous_manifest`` a manifest of an earlier
    run, whose unchanged items are skipped without any call; ``writeback`` (shopify or
    merchant) writes the new image URLs next to the manifest.

    Configuration comes from the named Prefect blocks when given, otherwise from the
    environment (GEMINI_API_KEY, GOOGLE_GEMINI_BASE_URL, AWS_ENDPOINT_URL_S3, ...).
    ``mode`` (default: the job spec's ``run.mode``, else realtime): realtime, batch (Gemini Batch mode: half price, results within 24 h) or
    auto (batch when there are enough items and ``deadline_hours`` allows).
    ``shard_index``/``shard_count`` make this run one shard of the catalog (see
    flows/sharded_flow.py). Emits ``bananaflow.batch.completed`` when it ends.
    Returns the run summary as a dict.
    """
    install_log_redaction()  # also when started from a deployment, not the CLI
    logger = get_run_logger()
    t0 = time.monotonic()
    run_id = str(flow_run.id)

    if provider_block:
        provider_config = ImageProviderBlock.load(provider_block)
        provider_settings = provider_config.to_settings()
        fallback_models = fallback_models or provider_config.fallback_models  # the parameter wins
    else:
        provider_settings = ProviderSettings.from_env(model=model)
    model = model or provider_settings.model or default_model_id()
    if store_block:
        store_config = ImageStoreBlock.load(store_block)
        store, bucket, prefix = store_config.to_store(), store_config.bucket, store_config.prefix
    elif bucket:
        store = ImageStore(bucket, prefix)
    else:
        raise ConfigurationError("no bucket: pass bucket=... or store_block=... (an ImageStoreBlock name)")
    guard = WorkerGuard(GenerationLimits())
    if limits_block:
        guard = worker_guard(limits_block, GenerationLimits.load(limits_block))
        limits = guard.limits
        if guard.split:
            logger.info(
                "limits block %s: %d runs may generate at once and no BANANAFLOW_REDIS_URL is set, so this run "
                "uses 1/%d of each limit (in flight %d)", limits_block, limits.worker_slots, limits.worker_slots,
                limits.max_in_flight,
            )
        controller, policy = limits.to_controller(), limits.to_policy()
        images_per_minute = images_per_minute or limits.images_per_minute
        requests_per_day = requests_per_day or limits.requests_per_day
        spend_per_10min_usd = spend_per_10min_usd or limits.spend_per_10min_usd
        adaptive = adaptive or limits.adaptive
    else:
        controller, policy = RateController(concurrency, requests_per_minute), RetryPolicy()
    job_spec = build_job(job, template=template, model=model, image_size=image_size, aspect_ratio=aspect_ratio,
                         variant=variant, preset=output_preset, writeback=writeback, public_base_url=public_base_url)
    mode = mode or job_spec.spec.run.mode  # the parameter wins over the job spec's run: section
    deadline_hours = deadline_hours or job_spec.spec.run.deadline_hours
    choose_mode(mode, 0, provider_kind=provider_settings.kind, deadline_hours=deadline_hours)  # bad mode: fail early
    admission = admission_for_run(
        max_in_flight=controller.max_in_flight or concurrency, requests_per_minute=controller.requests_per_minute,
        images_per_minute=images_per_minute, requests_per_day=requests_per_day,
        spend_per_10min_usd=spend_per_10min_usd, adaptive=adaptive, fallback_models=fallback_models or (),
        allow_fallback=allow_fallback, variant=variant, max_cost_usd=max_cost_usd,
    )
    for fallback_model in fallback_models or ():
        JobOptions(model=fallback_model, image_size=image_size, aspect_ratio=aspect_ratio).validate()

    store.ensure_bucket()
    spool = Spool(default_spool_dir() / bucket, max_bytes=spool_max_bytes())
    drained = spool.drain(store) if spool.state().pending else 0
    if drained:
        logger.info("uploaded %d images kept in the local spool by an earlier run", drained)

    shard = Shard(shard_index, shard_count)
    work = plan(catalog, job_spec, prefix, encoding, catalog_preset, column_map)
    if job_spec.spec.writeback.format == "shopify" and work.preset != "shopify":
        raise ConfigurationError("writeback: shopify needs a Shopify product CSV export as the catalog")
    require_edit_mode(work.items, provider_settings.kind)
    if not shard.is_whole:  # every shard validates the whole catalog; only shard 1 reports rejections
        # a product group stays in one shard: its siblings need the leader's image as reference
        work.items = shard.select(work.items, sku_of=lambda item: item.group_reference_stem or item.key_stem)
        work.rejected = work.rejected if shard.index == 0 else []
        logger.info("shard %s of the catalog: %d items", shard.label, len(work.items))
    items, unchanged = split_previous(work.items, previous_manifest, run_id, store=store, prefix=prefix)
    logger.info(
        "%d products accepted, %d rejected; %d images planned (%d variants), %d unchanged since the previous run",
        len({i.sku for i in work.items}), len(work.rejected), len(work.items), len(job_spec.variants), len(unchanged),
    )

    tracker = ProgressTracker(len(items))
    announce(tracker)
    artifact = ProgressArtifact(tracker)
    claims = KeyClaims(store, run_id, lease_s=policy.deadline_s + 120)
    resources.register(
        run_id,
        resources.RunResources(
            provider_settings, store, controller, policy, spool, tracker, claims,
            extra={"admission": admission},
        ),
    )
    decision = choose_mode(mode, len(items), provider_kind=provider_settings.kind, deadline_hours=deadline_hours)
    if decision.mode == "batch" and any(i.reference_links or i.group_reference_stem for i in items):
        raise ConfigurationError("batch mode does not send reference photos yet: use --mode realtime for this job")
    logger.info("mode: %s (%s)", decision.mode, decision.reason)
    try:
        rows = list(unchanged)
        with guard.hold():
            rows.extend(_generate(run_id, items, decision.mode, controller.max_in_flight or concurrency,
                                  batch_max_items, batch_poll_max_s, deadline_hours))
    finally:
        resources.release(run_id)
        admission.keep_learned_limits()
    artifact.flush()
    if spool.state().pending:  # S3 may be back: upload what this run had to keep locally
        drained += spool.drain(store)

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_prefix = "/".join(p for p in (prefix.strip("/"), "runs", f"{stamp}-{flow_run.name}") if p)
    try:
        manifest_uris, rejected_uri = write_outputs(rows, work.rejected, store, run_prefix)
    except StorageError as exc:  # S3 is down: the manifest must still exist somewhere
        local = write_local(rows, spool.directory.parent / "manifests" / run_prefix.replace("/", "_"))
        logger.warning("could not write the manifest to S3 (%s); kept it at %s", exc.message, local["csv"])
        manifest_uris, rejected_uri = {kind: str(path) for kind, path in local.items()}, None
    else:
        writeback_uri = write_back(rows, job_spec, store, run_prefix, catalog, encoding)
        if writeback_uri:
            manifest_uris = {**manifest_uris, "writeback": writeback_uri}

    summary = summarize(
        rows, run_id=run_id, rejected=len(work.rejected), wall_s=time.monotonic() - t0, bucket=bucket, prefix=prefix
    )
    summary.manifest = manifest_uris
    summary.rejected_uri = rejected_uri
    summary.flow_run_url = url_for("flow-run", obj_id=run_id)
    summary.limits = admission.report()
    requested = {(i.row_number, i.variant): i.model for i in work.items}
    summary.fallbacks = sum(  # made by another model than the item asked for
        1 for r in rows
        if r.status == "succeeded" and r.model and not r.model.startswith(requested.get((r.row_number, r.variant), r.model))
    )
    spool_state = spool.state()
    summary.spool = {**spool_state.to_dict(), "uploaded": drained}
    if spool_state.pending:
        logger.warning("%d images wait in the local spool %s for S3 to return", spool_state.pending, spool_state.directory)
    publish_summary(summary)
    publish_gallery(rows, store, run_prefix)
    emit_batch_completed(summary, catalog=catalog, shard=shard)
    return {**summary.to_dict(), "mode": decision.mode}


def _generate(
    run_id: str, items: list[WorkItem], mode: str, max_in_flight: int, batch_max_items: int, batch_poll_max_s: float,
    deadline_hours: float | None,
) -> list[ManifestRow]:
    """Every item's row: chunk tasks (realtime) or provider batches, wave after wave, since
    group siblings wait for the image of their group's first product (their reference)."""
    rows: list[ManifestRow] = []
    for wave in waves(items):
        if mode == "batch":
            poll = PollPolicy(initial_s=min(10.0, batch_poll_max_s), max_interval_s=batch_poll_max_s,
                              give_up_after_s=deadline_hours * 3600 if deadline_hours else PollPolicy.give_up_after_s)
            rows.extend(generate_in_batches(run_id, wave, BatchSettings(BatchLimits(max_items=batch_max_items), poll)))
            continue
        chunks = chunked(wave, chunk_size_for(len(wave), max_in_flight))
        futures = generate_images.map(
            run_id=unmapped(run_id), items=chunks, label=[f"{i + 1}/{len(chunks)}" for i in range(len(chunks))]
        )
        for chunk, future in zip(chunks, futures):
            rows.extend(_rows_of(chunk, future, run_id))
    return rows


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
            mode="realtime",
            error_message=message[:500],
            model=item.model,
            image_size=item.image_size,
            aspect_ratio=item.aspect_ratio,
            prompt_sha256=item.prompt_sha256,
        )
        for item in chunk
    ]
