"""``bananaflow run``, ``prompts`` and ``estimate``: each builds ``RunOptions`` from its flags
(``cli.arguments``) and checks what it can before any server starts or any call is made."""
from __future__ import annotations

import argparse
import os

from bananaflow.cli.arguments import options_from_args
from bananaflow.cli.launch import EXIT_OK, exit_code, run_flow
from bananaflow.errors import BananaflowError
from bananaflow.options import RunOptions
from bananaflow.planning.jobspec import Job, build_job, check_fallback_models
from bananaflow.providers.models import default_model_id


def _model(options: RunOptions) -> str:
    return options.images.model or os.environ.get("BANANAFLOW_MODEL") or default_model_id()


def _job(options: RunOptions) -> Job:
    return build_job(options, model=_model(options))


def _prefix(options: RunOptions) -> str | None:
    """The run's prefix: ``--prefix``, or the one in ``--bucket gs://bucket/prefix``."""
    from bananaflow.landing.destination import parse_destination

    delivery = options.delivery
    return parse_destination(delivery.bucket, delivery.prefix).prefix if delivery.bucket else delivery.prefix


def cmd_prompts(args: argparse.Namespace) -> int:
    from bananaflow.planning.preview import format_preview, preview

    options = options_from_args(args)
    result = preview(
        args.catalog, _job(options), prefix=_prefix(options) or "bananaflow", reading=options.reading,
        bucket=options.delivery.bucket, limit=max(0, args.limit),
    )
    print(format_preview(result, limit=max(0, args.limit), rejections=max(0, args.rejections)))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from bananaflow.planning.mode import choose_mode
    from bananaflow.planning.preflight import check_inputs
    from bananaflow.providers.settings import ProviderSettings

    options = options_from_args(args)
    if not options.delivery.bucket:
        raise BananaflowError("--bucket is required (the S3 bucket, or gs://bucket, for images and manifests)")
    job = _job(options)  # a bad spec, template or option fails here, before any server starts
    check_inputs(args.catalog, job, prefix=_prefix(options) or "", reading=options.reading)
    mode = options.execution.mode or job.spec.run.mode
    if mode != "realtime":  # a relay has no Batch mode: say so before any work starts
        provider = ProviderSettings.from_env(model=_model(options))
        choose_mode(mode, 0, provider_kind=provider.kind, models=tuple({v.model for v in job.variants}),
                    location=provider.location)
        if provider.kind == "vertex" and mode == "batch" and not options.delivery.bucket.startswith("gs://"):
            from bananaflow.batch.gcs_staging import staging_uri

            staging_uri("", os.environ)  # Vertex batch reads and writes Cloud Storage: say where, now
    check_fallback_models(options.spend.fallback_models or (), options.images)
    return exit_code(run_flow(args.catalog, options, show_progress=not args.no_progress))


def cmd_estimate(args: argparse.Namespace) -> int:
    """Prices the job's work items as the run would plan them (every variant counts)."""
    from bananaflow.options import resolve_limits
    from bananaflow.planning.estimate import estimate_items
    from bananaflow.planning.plan import open_catalog_for, stream_items

    options = options_from_args(args)
    if args.latency <= 0:
        raise BananaflowError("--latency must be positive")
    job = _job(options)  # validates model, ratio and size of every variant
    limits = resolve_limits(options.limits, None)
    # the run's streaming planner: items are priced as they are made, none is kept
    catalog = open_catalog_for(args.catalog, options.reading)
    result = estimate_items(
        stream_items(catalog, job, options.delivery.prefix or "bananaflow"),
        max_in_flight=limits.max_in_flight, latency_s=args.latency,
        requests_per_minute=limits.requests_per_minute, images_per_minute=limits.images_per_minute,
        requests_per_day=limits.requests_per_day, spend_per_10min_usd=limits.spend_per_10min_usd,
    )
    for line in result.lines():
        print(line)
    if catalog.rejected:
        print(f"rejected:      {len(catalog.rejected)} catalog rows would be skipped (see `bananaflow prompts`)")
    if catalog.skipped:
        print(f"skipped:       {len(catalog.skipped)} drafts, archived or app pseudo-products (--include-unpublished)")
    return EXIT_OK
