"""Turning a run's options into a configured run: blocks loaded, the merge rule applied,
everything checked before the first call (see ``bananaflow.options`` for the rule)."""
from __future__ import annotations

import asyncio

from prefect import get_run_logger
from prefect.runtime import flow_run

from bananaflow.batch.runner import PollPolicy
from bananaflow.errors import ConfigurationError
from bananaflow.generation.retry import RetryPolicy
from bananaflow.landing.claims import KeyClaims, lease_from_env
from bananaflow.landing.spool import spool_for_bucket
from bananaflow.landing.storage import ImageStore
from bananaflow.limits.admission import admission_for_run
from bananaflow.limits.settings import LimitSettings
from bananaflow.options import RunOptions, resolve_limits
from bananaflow.planning.batch_sizing import BatchLimits
from bananaflow.planning.jobspec import Job, build_job, check_fallback_models
from bananaflow.planning.mode import choose_mode
from bananaflow.planning.quality import resolve_quality
from bananaflow.providers.models import default_model_id
from bananaflow.providers.settings import ProviderSettings
from bananaflow.quality.build import preflight_judge
from bananaflow_prefect.blocks import GenerationLimits, ImageProviderBlock, ImageStoreBlock, load_block
from bananaflow_prefect.blocks.aws import store_from_prefect_aws
from bananaflow_prefect.blocks.gcp import vertex_settings_from_block
from bananaflow_prefect.tasks.guard import WorkerGuard, worker_guard
from bananaflow_prefect.tasks.run_context import BatchSettings, RunConfig, RunContext

DEFAULT_PREFIX = "bananaflow"


def open_run(catalog: str, options: RunOptions) -> RunContext:
    """The run's context: provider, store, limits, job and admission, by the merge rule."""
    provider_block = load_block(ImageProviderBlock, options.blocks.provider) if options.blocks.provider else None
    if options.blocks.gcp_credentials:  # prefect-gcp's block: Vertex AI with its service account
        provider = vertex_settings_from_block(options.blocks.gcp_credentials, options.images.model)
    else:
        provider = provider_block.to_settings() if provider_block else ProviderSettings.from_env(model=options.images.model)
    model = options.images.model or provider.model or default_model_id()
    fallback = options.spend.fallback_models
    if fallback is None and provider_block is not None:
        fallback = provider_block.fallback_models
    store, public_base_url = resolve_store(options)
    limits, guard = _limits(options, provider.kind)
    images = options.images
    job = build_job(options, model=model, public_base_url=public_base_url)
    execution = options.execution
    choose_mode(execution.mode or job.spec.run.mode, 0, provider_kind=provider.kind,
                deadline_hours=execution.deadline_hours or job.spec.run.deadline_hours)  # a bad mode fails here
    check_fallback_models(fallback or (), images)
    policy = RetryPolicy(max_attempts=limits.max_attempts, deadline_s=limits.deadline_s)
    config = RunConfig(
        run_id=str(flow_run.id), catalog=catalog, options=options, job=job, provider_settings=provider, store=store,
        limits=limits, policy=policy, batch=batch_settings(options, job),
        quality=resolve_quality(options.quality, job.spec.qa, provider_block.quality_defaults() if provider_block else None),
    )
    if config.quality.enabled:  # a route that cannot judge is refused here, naming --qa off / --qa-model
        asyncio.run(preflight_judge(provider, config.quality.model))
    return RunContext(
        config=config, spool=spool_for_bucket(store.bucket), guard=guard,
        admission=admission_for_run(
            limits, fallback_models=fallback or (), max_cost_usd=options.spend.max_cost_usd,
            no_fallback_variants=() if options.spend.allow_fallback is not False else (images.variant,),
        ),
        claims=KeyClaims(store, config.run_id, lease_s=lease_from_env(), wait_s=policy.deadline_s + 120),
    )


def batch_settings(options: RunOptions, job: Job) -> BatchSettings:
    """Batch sizes and the poll policy: the run's deadline, else the job spec's, bounds the polling."""
    execution = options.execution
    deadline_hours = execution.deadline_hours or job.spec.run.deadline_hours
    poll = PollPolicy(initial_s=min(10.0, execution.batch_poll_max_s), max_interval_s=execution.batch_poll_max_s,
                      give_up_after_s=deadline_hours * 3600 if deadline_hours else PollPolicy.give_up_after_s)
    return BatchSettings(BatchLimits(max_items=execution.batch_max_items), poll)


def resolve_store(options: RunOptions) -> tuple[ImageStore, str | None]:
    """The store and public base URL: the run's bucket/prefix/URL, else the store block's."""
    delivery = options.delivery
    if options.blocks.s3_bucket or options.blocks.aws_credentials:  # prefect-aws's own blocks
        store = store_from_prefect_aws(s3_bucket=options.blocks.s3_bucket, aws_credentials=options.blocks.aws_credentials,
                                       bucket=delivery.bucket, prefix=delivery.prefix, default_prefix=DEFAULT_PREFIX)
        return store, delivery.public_base_url
    block = load_block(ImageStoreBlock, options.blocks.store) if options.blocks.store else None
    if block is not None:
        update = {k: v for k, v in (("bucket", delivery.bucket), ("prefix", delivery.prefix)) if v is not None}
        store = block.model_copy(update=update).to_store()
        return store, delivery.public_base_url or block.public_base_url
    if not delivery.bucket:
        raise ConfigurationError("no bucket: set delivery.bucket (--bucket) or blocks.store (an ImageStoreBlock name)")
    return ImageStore(delivery.bucket, delivery.prefix if delivery.prefix is not None else DEFAULT_PREFIX), (
        delivery.public_base_url
    )


def _limits(options: RunOptions, provider_kind: str = "gemini") -> tuple[LimitSettings, WorkerGuard]:
    """The limits this run uses (its share, when the block holds worker slots and no Redis).

    On Vertex AI, whose Dynamic Shared Quota has no per-project limit to set, the adaptive
    controller is the default (``limits.adaptive: false`` in the run's options turns it off)."""
    name = options.blocks.limits
    limits = resolve_limits(options.limits, load_block(GenerationLimits, name) if name else None)
    if provider_kind == "vertex" and options.limits.adaptive is None and not limits.adaptive:
        limits = limits.model_copy(update={"adaptive": True})
    if not name:
        return limits, WorkerGuard(limits)
    guard = worker_guard(name, limits)
    if guard.split:
        get_run_logger().info(
            "limits block %s: %d runs may generate at once and no BANANAFLOW_REDIS_URL is set, so this run "
            "uses 1/%d of each limit (in flight %d)", name, limits.worker_slots, limits.worker_slots,
            guard.limits.max_in_flight,
        )
    return guard.limits, guard
