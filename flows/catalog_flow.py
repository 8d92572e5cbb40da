"""Catalog in, product images and a manifest out: the flow users run nightly.

The flow body is the story: configure → plan → skip unchanged → generate → publish →
summarise. Each step below is one short function; the engine (``bananaflow``) does the work.
"""
from __future__ import annotations

import os
import time
from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any, cast

from prefect import flow, get_run_logger
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.urls import url_for

from bananaflow.batch.gcs_staging import staging_uri
from bananaflow.batch.ledger import LEDGER_DIR
from bananaflow.errors import ConfigurationError, StorageError
from bananaflow.landing.manifest_stream import write_manifest_files
from bananaflow.options import (
    BlockNames,
    CatalogOptions,
    DeliveryOptions,
    ExecutionOptions,
    ImageOptions,
    LimitOptions,
    QualityOptions,
    RunOptions,
    SpendOptions,
)
from bananaflow.planning.delta import drop_unchanged
from bananaflow.planning.mode import ModeChoice, choose_mode
from bananaflow.planning.sharding import Shard
from bananaflow.planning.work import WorkItem, chunk_size_for
from bananaflow.planning.work_store import WorkStore
from bananaflow.reports.progress import announce
from bananaflow.reports.summary import RunSummary
from bananaflow.secrets import install_log_redaction, mask_url
from bananaflow_prefect.flows.configure import check_deployment_inputs, open_run
from bananaflow_prefect.tasks import run_context
from bananaflow_prefect.tasks.batch import generate_in_batches
from bananaflow_prefect.tasks.events import emit_batch_completed
from bananaflow_prefect.tasks.gallery import publish_gallery
from bananaflow_prefect.tasks.generation import generate_images, item_pump, settle_chunk
from bananaflow_prefect.tasks.planning import Plan, plan
from bananaflow_prefect.tasks.reporting import ProgressArtifact, publish_summary, row_batches, write_outputs
from bananaflow_prefect.tasks.review import keep_review_context, review
from bananaflow_prefect.tasks.run_context import RunContext
from bananaflow_prefect.tasks.writeback import write_back

#: Threads that run chunk tasks; the rate controller, not this number, bounds requests.
TASK_THREADS = 16


#: Prefect's own thread pool, typed TaskRunner[PrefectConcurrentFuture]: ``flow`` asks for TaskRunner[PrefectFuture],
#: and TaskRunner is invariant, so the documented runner needs the one cast below.
TASK_RUNNER = cast("TaskRunner[PrefectFuture[Any]]", ThreadPoolTaskRunner(max_workers=TASK_THREADS))


@flow(name="catalog-to-images", task_runner=TASK_RUNNER, log_prints=True)
def catalog_to_images(
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
    """Generate the images of a job spec (or one image per product) for every catalog product
    and land them in S3 with a manifest. Each group of options is described in
    ``bananaflow.options``; a field left empty takes the named block's value, then the
    environment's (GEMINI_API_KEY, AWS_ENDPOINT_URL_S3, ...). Emits
    ``bananaflow.batch.completed`` when it ends and returns the run summary as a dict."""
    install_log_redaction()  # also when started from a deployment, not the CLI
    started = time.monotonic()
    options = RunOptions(images=images, reading=reading, delivery=delivery, limits=limits, spend=spend, quality=quality,
                         execution=execution, blocks=blocks)
    check_deployment_inputs(catalog, options)
    run = open_run(catalog, options)
    drain_spool(run)
    work = plan_work(run)
    try:
        unchanged = skip_unchanged(run, work)
        log_plan(run, work, unchanged)
        mode = choose_run_mode(run, work.items)
        generate(run, work.items, mode)
        reviewed = review(run, work.items)  # --review flagged|all: waits for a person, then makes again what they sent back
    finally:
        work.items.close()
    outputs = publish(run, work)
    summary = summarise(run, work, outputs, wall_s=time.monotonic() - started, review=reviewed)
    run.state.rows.close()
    return {**summary.to_dict(), "mode": mode.mode}


def drain_spool(run: RunContext) -> None:
    """Upload what an earlier run had to keep locally (S3 was down, or the run crashed)."""
    run.config.store.ensure_bucket()
    if run.spool.state().pending:
        run.state.uploaded_from_spool(uploaded := run.spool.drain(run.config.store))
        get_run_logger().info("uploaded %d images kept in the local spool by an earlier run", uploaded)


def plan_work(run: RunContext) -> Plan:
    """The catalog's work items for this run (this shard's, when sharded), kept on disk."""
    config = run.config
    execution = config.options.execution
    shard = Shard(execution.shard_index, execution.shard_count)
    work = plan(config.catalog, config.job, config.prefix, config.options.reading,
                provider_kind=config.provider_settings.kind, shard=shard)
    if config.job.spec.writeback.format == "shopify" and work.preset != "shopify":
        work.items.close()
        raise ConfigurationError("writeback: shopify needs a Shopify product CSV export as the catalog")
    if not shard.is_whole:  # every shard validates the whole catalog; only shard 1 reports rejections
        work.rejected = work.rejected if shard.index == 0 else []
        work.skipped = work.skipped if shard.index == 0 else []
        get_run_logger().info("shard %s of the catalog: %d items", shard.label, work.items.count())
    return work


def skip_unchanged(run: RunContext, work: Plan) -> int:
    """Record (not make) the items the previous run already made as planned; how many."""
    unchanged = 0
    config = run.config
    for rows in drop_unchanged(work.items, config.options.reading.previous_manifest, config.run_id,
                               manifests=config.store, prefix=config.prefix,
                               retry_rejected=config.quality.retry_rejected):
        unchanged += run.state.record(rows)  # to the run's row log and tally, not into a list of the flow
    return unchanged


def log_plan(run: RunContext, work: Plan, unchanged: int) -> None:
    get_run_logger().info(
        "%d products accepted, %d rejected; %d images planned (%d variants), %d unchanged since the previous run",
        work.products, len(work.rejected), work.items.count() + unchanged, len(run.config.job.variants), unchanged,
    )


def choose_run_mode(run: RunContext, items: WorkStore) -> ModeChoice:
    """Realtime or batch for this many items (the run's option, else the job spec's)."""
    execution, spec_run = run.config.options.execution, run.config.job.spec.run
    provider = run.config.provider_settings
    decision = choose_mode(execution.mode or spec_run.mode, items.count(), provider_kind=provider.kind,
                           deadline_hours=execution.deadline_hours or spec_run.deadline_hours,
                           models=tuple({v.model for v in run.config.job.variants}), location=provider.location)
    if decision.mode == "batch" and items.sends_references:
        raise ConfigurationError("batch mode does not send reference photos yet: use --mode realtime for this job")
    if decision.mode == "batch" and provider.kind == "vertex":  # no Cloud Storage place: one line, now
        store = run.config.store
        staging_uri(store.uri(store.key(*LEDGER_DIR)), os.environ)
    get_run_logger().info("mode: %s (%s)", decision.mode, decision.reason)
    return decision


def generate(run: RunContext, items: WorkStore, mode: ModeChoice) -> None:
    """Every item's row into the run's row log, with progress shown as it goes; the run's
    context is registered for the tasks only meanwhile."""
    progress = run.state.begin(items.count())
    announce(progress)
    artifact = ProgressArtifact(progress)
    run_context.register(run)
    try:
        with run.guard.hold(), item_pump(run):
            _generate_waves(run, items, mode.mode)
    finally:
        run_context.release(run.run_id)
        run.admission.keep_learned_limits()
    artifact.flush()
    if run.spool.state().pending:  # S3 may be back: upload what this run had to keep locally
        run.state.uploaded_from_spool(run.spool.drain(run.config.store))
    if run.claims is not None:
        run.claims.release_pending()  # claims S3 refused to drop during the run


#: Chunk task runs submitted and not yet settled: enough to keep every task thread busy with
#: one queued behind it, so the flow holds a window of items, not the catalog.
CHUNKS_AHEAD = 2 * TASK_THREADS


def _generate_waves(run: RunContext, items: WorkStore, mode: str) -> None:
    """Chunk tasks (realtime) or provider batches, wave after wave: group siblings wait for
    the image of their group's first product (their reference). Chunks are read from the
    work store as task threads free up, ``CHUNKS_AHEAD`` at most."""
    for wave in items.waves():
        if mode == "batch":  # batch mode plans its provider batches over the whole wave
            run.state.record(generate_in_batches(run.run_id, items.in_wave(wave)))
            continue
        count = items.count(wave)
        size = chunk_size_for(count, run.config.limits.max_in_flight, workers=TASK_THREADS)
        total = -(-count // size)
        pending: deque[tuple[list[WorkItem], PrefectFuture]] = deque()
        for number, chunk in enumerate(items.chunks(wave, size), start=1):
            pending.append((chunk, generate_images.submit(run_id=run.run_id, items=chunk, label=f"{number}/{total}")))
            if len(pending) >= CHUNKS_AHEAD:
                settle_chunk(*pending.popleft(), run)
        while pending:
            settle_chunk(*pending.popleft(), run)


def publish(run: RunContext, work: Plan) -> tuple[dict[str, str], str | None]:
    """Manifest, rejected rows and write-back file beside it; kept locally if S3 is down."""
    config, rows = run.config, run.state.rows
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_prefix = "/".join(p for p in (config.prefix.strip("/"), "runs", f"{stamp}-{flow_run.name}") if p)
    try:
        manifest_uris, rejected_uri = write_outputs(rows, work.rejected, config.store, run_prefix)
    except StorageError as exc:  # S3 is down: the manifest must still exist somewhere
        local = write_manifest_files(row_batches(rows),
                                     run.spool.directory.parent / "manifests" / run_prefix.replace("/", "_"))
        get_run_logger().warning("could not write the manifest to S3 (%s); kept it at %s", exc.message, local["csv"])
        return {kind: str(path) for kind, path in local.items()}, None
    writeback_uri = write_back(rows, config.job, config.store, run_prefix, config.catalog,
                               config.options.reading.encoding)
    if writeback_uri:
        manifest_uris = {**manifest_uris, "writeback": writeback_uri}
    publish_gallery(rows, config.store, run_prefix)
    keep_review_context(run, run_prefix)
    return manifest_uris, rejected_uri


def summarise(
    run: RunContext, work: Plan, outputs: tuple[dict[str, str], str | None], *, wall_s: float,
    review: dict[str, Any] | None = None,
) -> RunSummary:
    """The summary (from the run's tally: counters, not rows): counts, cost, limits, spool;
    published as artifacts and an event."""
    config = run.config
    summary = run.state.tally.summary(run_id=config.run_id, rejected=len(work.rejected), wall_s=wall_s,
                                      bucket=config.bucket, prefix=config.prefix)
    summary.manifest, summary.rejected_uri = outputs
    summary.scheme = config.store.scheme
    summary.skipped_products = dict(Counter(s.reason for s in work.skipped))
    summary.flow_run_url = mask_url(url_for("flow-run", obj_id=run.run_id) or "") or None
    summary.limits = run.admission.report()
    spool_state = run.spool.state()
    summary.spool = {**spool_state.to_dict(), "uploaded": run.state.drained}
    summary.review = review or {}
    if spool_state.pending:
        get_run_logger().warning("%d images wait in the local spool %s for S3 to return", spool_state.pending,
                                 spool_state.directory)
    publish_summary(summary)
    execution = config.options.execution
    emit_batch_completed(summary, catalog=config.catalog, shard=Shard(execution.shard_index, execution.shard_count))
    return summary
