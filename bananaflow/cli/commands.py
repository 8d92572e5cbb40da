"""``bananaflow run``, ``prompts`` and ``estimate``: each builds ``RunOptions`` from its flags
(``cli.arguments``) and checks what it can before any server starts or any call is made."""
from __future__ import annotations

import argparse
import os
from collections.abc import Iterable

from bananaflow.cli.arguments import options_from_args
from bananaflow.cli.launch import EXIT_OK, exit_code, run_flow
from bananaflow.errors import BananaflowError
from bananaflow.options import RunOptions
from bananaflow.planning.jobspec import Job, build_job, check_fallback_models
from bananaflow.planning.work import WorkItem
from bananaflow.providers.models import default_model_id


def _model(options: RunOptions) -> str:
    return options.images.model or os.environ.get("BANANAFLOW_MODEL") or default_model_id()


def _job(options: RunOptions) -> Job:
    return build_job(options, model=_model(options))


def judge_call_cost(model: str, items: Iterable[WorkItem]) -> float:
    """The most one judge call of this job costs (the longest prompt, the image and up to the
    judge model's limit of reference photos), priced from the judge model's token prices."""
    from bananaflow.quality.judge_models import get_judge_model

    spec = get_judge_model(model)
    longest, references = "", 0
    for item in items:
        longest = max(longest, item.prompt, key=len)
        references = max(references, len(item.reference_links) + (1 if item.group_reference_stem else 0))
    return spec.worst_case(text=longest, images=1 + min(references, spec.max_images - 1))


def cmd_prompts(args: argparse.Namespace) -> int:
    from bananaflow.planning.preview import format_preview, preview
    from bananaflow.planning.quality import regeneration_share, resolve_quality

    options = options_from_args(args)
    job = _job(options)
    result = preview(
        args.catalog, job, prefix=options.delivery.prefix or "bananaflow", reading=options.reading,
        bucket=options.delivery.bucket,
    )
    print(format_preview(result, limit=max(0, args.limit), rejections=max(0, args.rejections)))
    quality = resolve_quality(options.quality, job.spec.qa)
    if quality.enabled and result.to_generate:
        from bananaflow.planning.delta import previous_rows

        share = regeneration_share(previous_rows(options.reading.previous_manifest)
                                   if options.reading.previous_manifest else None)
        judge = result.to_generate * (1 + share.share) * judge_call_cost(quality.model, result.items)
        print(f"quality gate: judge {quality.model} at most ${judge:.2f}, {share.share:.0%} expected to be made "
              f"again (${result.cost_usd * share.share:.2f}; {share.source}); --qa off leaves both out")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from bananaflow.planning.mode import choose_mode
    from bananaflow.planning.preflight import check_inputs
    from bananaflow.providers.settings import ProviderSettings

    options = options_from_args(args)
    if not options.delivery.bucket:
        raise BananaflowError("--bucket is required (the S3 bucket for images and manifests)")
    job = _job(options)  # a bad spec, template or option fails here, before any server starts
    check_inputs(args.catalog, job, prefix=options.delivery.prefix or "", reading=options.reading)
    mode = options.execution.mode or job.spec.run.mode
    if mode != "realtime":  # a relay has no Batch mode: say so before any work starts
        choose_mode(mode, 0, provider_kind=ProviderSettings.from_env(model=_model(options)).kind)
    check_fallback_models(options.spend.fallback_models or (), options.images)
    return exit_code(run_flow(args.catalog, options, show_progress=not args.no_progress))


def cmd_estimate(args: argparse.Namespace) -> int:
    """Prices the job's work items as the run would plan them (every variant counts)."""
    from bananaflow.options import resolve_limits
    from bananaflow.planning.delta import previous_rows
    from bananaflow.planning.estimate import estimate_items
    from bananaflow.planning.plan import plan_catalog
    from bananaflow.planning.quality import regeneration_share, resolve_quality

    options = options_from_args(args)
    if args.latency <= 0:
        raise BananaflowError("--latency must be positive")
    job = _job(options)  # validates model, ratio and size of every variant
    limits = resolve_limits(options.limits, None)
    planned = plan_catalog(args.catalog, job, options.reading, prefix=options.delivery.prefix or "bananaflow")
    result = estimate_items(
        planned.items, max_in_flight=limits.max_in_flight, latency_s=args.latency,
        requests_per_minute=limits.requests_per_minute, images_per_minute=limits.images_per_minute,
        requests_per_day=limits.requests_per_day, spend_per_10min_usd=limits.spend_per_10min_usd,
    )
    quality = resolve_quality(options.quality, job.spec.qa)
    if quality.enabled:
        share = regeneration_share(previous_rows(options.reading.previous_manifest)
                                   if options.reading.previous_manifest else None)
        result = result.with_quality_gate(judge_model=quality.model, judge_cost_per_call_usd=judge_call_cost(
            quality.model, planned.items), share=share.share, source=share.source)
    for line in result.lines():
        print(line)
    catalog = planned.catalog
    if catalog.rejected:
        print(f"rejected:      {len(catalog.rejected)} catalog rows would be skipped (see `bananaflow prompts`)")
    if catalog.skipped:
        print(f"skipped:       {len(catalog.skipped)} drafts, archived or app pseudo-products (--include-unpublished)")
    return EXIT_OK
