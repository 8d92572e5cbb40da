"""``bananaflow`` command line.

The engine (this package) does not import Prefect; commands that run flows import them
lazily, so ``bananaflow simulator`` and friends start fast and work without a server.
Exit codes: 0 every item succeeded, already existed or was blocked by the provider's
safety filter; 1 some items failed or were deferred; 2 a usage or configuration error.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from bananaflow.errors import BananaflowError
from bananaflow.secrets import install_log_redaction

EXIT_OK, EXIT_ITEMS_FAILED, EXIT_USAGE = 0, 1, 2


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("catalog", help="catalog file: CSV/TSV/JSONL/Parquet, local path or s3://bucket/key")
    p.add_argument("--bucket", help="S3 bucket for images and manifests (endpoint/credentials from AWS_* env)")
    p.add_argument("--prefix", default="bananaflow", help="key prefix (default: %(default)s)")
    p.add_argument("--template", help="Jinja2 prompt template file (default: the built-in product-shot prompt)")
    p.add_argument("--size", default="1K", help="image size: 512 (3.1 Flash), 1K, 2K, 4K (default: %(default)s)")
    p.add_argument("--aspect", default="1:1", help="aspect ratio, e.g. 1:1, 4:5, 16:9 (default: %(default)s)")
    p.add_argument("--model", help="model id (default: BANANAFLOW_MODEL or gemini-3-pro-image)")
    p.add_argument("--variant", default="main", help="variant name used in object keys (default: %(default)s)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight at once (default: %(default)s)")
    p.add_argument("--rpm", type=float, default=None, help="requests per minute your project allows")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs instead)")
    p.add_argument("--mode", choices=("realtime", "batch", "auto"), default=None,
                   help="realtime calls, Gemini Batch mode (half price, results within 24 h), or auto: "
                   "batch for large jobs whose deadline allows (default: the job spec's run.mode, else realtime)")
    p.add_argument("--deadline-hours", type=float, default=None,
                   help="the job must finish within this many hours (auto picks realtime under 24)")
    p.add_argument("--batch-max-items", type=int, default=500, help="images per batch at most (default: %(default)s)")
    p.add_argument("--batch-poll-max", type=float, default=300.0, metavar="SECONDS",
                   help="longest wait between two polls of a batch (default: %(default)s)")
    _add_catalog_arguments(p)
    p.add_argument("--output-preset", help="marketplace preset for the single-template variant (e.g. amazon-main)")
    p.add_argument("--writeback", choices=("shopify", "merchant"), help="write the new image URLs back next to the manifest")
    p.add_argument("--public-base-url", help="public URL the bucket is served under (default: presigned URLs)")
    _add_limit_arguments(p)
    g = p.add_argument_group("fallback and budget")
    g.add_argument("--fallback-model", action="append", default=[], metavar="MODEL",
                   help="model to use when the main one is overloaded, failing or out of quota (repeatable, in order)")
    g.add_argument("--no-fallback", action="store_true", help="this variant must be made by --model only")
    g.add_argument("--max-cost", type=float, metavar="USD",
                   help="stop sending at this spend (worst case reserved per call); the rest is deferred")
    g.add_argument("--adaptive", action="store_true",
                   help="learn requests/min from 429/503 answers (AIMD); starts unmetered (in-flight cap only) "
                        "until the first 429, or slow-starts from --rpm")


def _add_catalog_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by ``run`` and ``prompts``: how to read the catalog, what to make."""
    p.add_argument("--encoding", help="catalog text encoding, e.g. gb18030, cp1252 (default: UTF-8, BOM or not; GBK detected)")
    p.add_argument("--job", help="job spec (YAML or TOML): variants, templates, presets; overrides the single-template flags")
    p.add_argument("--catalog-preset", help="shopify, merchant or none (default: recognised from the columns)")
    p.add_argument(
        "--map", action="append", default=[], metavar='FIELD="Column"',
        help='use a column of the file as one of our fields, e.g. --map sku="Variant SKU" (repeatable)',
    )
    p.add_argument("--previous-manifest", help="manifest of an earlier run (path, s3:// URI, or 'latest' under --prefix): only new or changed products are generated")


def _add_limit_arguments(p: argparse.ArgumentParser) -> None:
    """The project's limits as AI Studio shows them (shared with ``estimate``)."""
    g = p.add_argument_group("limits (per project and model; BANANAFLOW_REDIS_URL shares them between workers)")
    g.add_argument("--ipm", type=float, default=None, help="images per minute your project allows")
    g.add_argument("--rpd", type=int, default=None, help="requests per day (resets at midnight Pacific)")
    g.add_argument("--spend-cap", type=float, default=None, metavar="USD",
                   help="spend limit per rolling 10 minutes ($10 Tier 1, $50 Tier 2, $200 Tier 3)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bananaflow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="generate images for a catalog and land them in S3")
    _add_run_arguments(run)

    demo = sub.add_parser("demo", help="run the example catalog on the simulator, a local S3 server and Prefect")
    demo.add_argument("--catalog", default="examples/catalog.csv")
    demo.add_argument("--state-dir", default=".state", help="where local servers keep their data")
    demo.add_argument("--prefect-port", type=int, default=4200)
    demo.add_argument("--concurrency", type=int, default=8)
    demo.add_argument("--no-progress", action="store_true")

    prompts = sub.add_parser("prompts", help="preview rendered prompts, image count and list-price cost (no API calls)")
    prompts.add_argument("catalog", help="catalog file, local path or s3://bucket/key")
    prompts.add_argument("--template", help="Jinja2 prompt template file (without --job)")
    prompts.add_argument("--size", default="1K")
    prompts.add_argument("--aspect", default="1:1")
    prompts.add_argument("--model", help="model id (default: BANANAFLOW_MODEL or gemini-3-pro-image)")
    prompts.add_argument("--variant", default="main")
    prompts.add_argument("--prefix", default="bananaflow", help="key prefix, for the delta comparison")
    prompts.add_argument("--bucket", help="bucket of earlier runs, for --previous-manifest latest")
    prompts.add_argument("--limit", type=int, default=20, help="prompts to print (default: %(default)s)")
    _add_catalog_arguments(prompts)

    est = sub.add_parser("estimate", help="images, cost and time for a catalog at your limits, before any call")
    est.add_argument("catalog", help="catalog file (as for run)")
    est.add_argument("--model", help="model id (default: BANANAFLOW_MODEL or gemini-3-pro-image)")
    est.add_argument("--size", default="1K")
    est.add_argument("--aspect", default="1:1")
    est.add_argument("--concurrency", type=int, default=8, help="requests in flight at once (default: %(default)s)")
    est.add_argument("--rpm", type=float, default=None, help="requests per minute your project allows")
    est.add_argument("--latency", type=float, default=15.0, help="mean seconds per image (default: %(default)s)")
    est.add_argument("--encoding")
    _add_limit_arguments(est)

    down = sub.add_parser("down", help="stop what `up` or `demo` left running (workers, Prefect server)")
    down.add_argument("--state-dir", default=".state")

    from bananaflow.cli.ops import add_ops_commands

    add_ops_commands(sub)
    sim = sub.add_parser("simulator", help="serve the Nano Banana simulator", add_help=False)
    sim.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulator"]:
        from bananaflow.testing.simulator.cli import main as simulator_main

        return simulator_main(argv[1:])
    args = build_parser().parse_args(argv)
    install_log_redaction()
    from bananaflow.cli.console import err_console

    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "prompts":
            return cmd_prompts(args)
        if args.command == "estimate":
            return cmd_estimate(args)
        if args.command == "demo":
            from bananaflow.cli.demo import run_demo

            return run_demo(args)
        if args.command == "down":
            from bananaflow.devstack.local_prefect import stop_server
            from bananaflow.cli.ops import stop_stack

            if stop_stack(Path(args.state_dir)):
                print("stopped the workers and local services of `bananaflow up`")
            stopped = stop_server(Path(args.state_dir) / "prefect")
            print("stopped the local Prefect server" if stopped else "no local Prefect server was running")
            return EXIT_OK
        from bananaflow.cli.ops import run_ops_command

        code = run_ops_command(args)
        if code is not None:
            return code
    except BananaflowError as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        return EXIT_USAGE
    except KeyboardInterrupt:
        err_console.print("interrupted: images already stored are kept; run the same command again to finish")
        return 130
    return EXIT_USAGE


def parse_map(pairs: Sequence[str]) -> dict[str, str]:
    """``--map sku="Variant SKU"`` options as the loader's {file column: our field} mapping."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        field, column = field.strip(), column.strip().strip("'\"")
        if not sep or not field or not column:
            raise BananaflowError(f'--map {pair!r} is not FIELD="Column", e.g. --map sku="Variant SKU"')
        if column in mapping:
            raise BananaflowError(f"--map uses the column {column!r} twice")
        mapping[column] = field
    return mapping


def _job_from_args(args: argparse.Namespace, model: str):  # noqa: ANN202 (Job, imported lazily)
    from bananaflow.planning.jobspec import build_job

    return build_job(
        args.job, template=args.template, model=model, image_size=args.size, aspect_ratio=args.aspect,
        variant=args.variant, preset=getattr(args, "output_preset", None),
        writeback=getattr(args, "writeback", None), public_base_url=getattr(args, "public_base_url", None),
    )


def cmd_prompts(args: argparse.Namespace) -> int:
    from bananaflow.providers.models import default_model_id
    from bananaflow.planning.preview import format_preview, preview

    model = args.model or os.environ.get("BANANAFLOW_MODEL") or default_model_id()
    job = _job_from_args(args, model)
    result = preview(
        args.catalog, job, prefix=args.prefix, encoding=args.encoding, catalog_preset=args.catalog_preset,
        column_map=parse_map(args.map) or None, previous_manifest=args.previous_manifest, bucket=args.bucket,
    )
    print(format_preview(result, limit=max(0, args.limit)))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from bananaflow.providers.models import default_model_id

    if not args.bucket:
        raise BananaflowError("--bucket is required (the S3 bucket for images and manifests)")
    model = args.model or os.environ.get("BANANAFLOW_MODEL") or default_model_id()
    job = _job_from_args(args, model)  # a bad spec, template or option fails here, before any server starts
    column_map = parse_map(args.map) or None
    from bananaflow.planning.preflight import check_inputs

    check_inputs(args.catalog, job, prefix=args.prefix, encoding=args.encoding,
                 catalog_preset=args.catalog_preset, column_map=column_map)
    mode = args.mode or job.spec.run.mode
    if mode != "realtime":  # a relay has no Batch mode: say so before any work starts
        from bananaflow.batch import choose_mode
        from bananaflow.providers.settings import ProviderSettings

        choose_mode(mode, 0, provider_kind=ProviderSettings.from_env(model=model).kind)
    if args.batch_max_items < 1:
        raise BananaflowError(f"--batch-max-items must be at least 1, got {args.batch_max_items}")
    if args.batch_poll_max <= 0:
        raise BananaflowError(f"--batch-poll-max must be positive, got {args.batch_poll_max:g}")
    if args.deadline_hours is not None and args.deadline_hours <= 0:
        raise BananaflowError(f"--deadline-hours must be positive, got {args.deadline_hours:g}")
    from bananaflow.planning.work import JobOptions

    for fallback in args.fallback_model:
        JobOptions(model=fallback, image_size=args.size, aspect_ratio=args.aspect).validate()
    if args.max_cost is not None and args.max_cost <= 0:
        raise BananaflowError(f"--max-cost must be a positive number of USD, got {args.max_cost}")
    summary = run_flow(
        dict(
            catalog=args.catalog,
            bucket=args.bucket,
            prefix=args.prefix,
            template=args.template,
            model=model,
            image_size=args.size,
            aspect_ratio=args.aspect,
            variant=args.variant,
            concurrency=args.concurrency,
            requests_per_minute=args.rpm,
            encoding=args.encoding,
            mode=args.mode,
            deadline_hours=args.deadline_hours,
            batch_max_items=args.batch_max_items,
            batch_poll_max_s=args.batch_poll_max,
            job=args.job,
            catalog_preset=args.catalog_preset,
            column_map=column_map,
            previous_manifest=args.previous_manifest,
            writeback=args.writeback,
            public_base_url=args.public_base_url,
            output_preset=args.output_preset,
            images_per_minute=args.ipm,
            requests_per_day=args.rpd,
            spend_per_10min_usd=args.spend_cap,
            adaptive=args.adaptive,
            fallback_models=args.fallback_model,
            allow_fallback=not args.no_fallback,
            max_cost_usd=args.max_cost,
        ),
        show_progress=not args.no_progress,
    )
    return EXIT_OK if summary["ok"] else EXIT_ITEMS_FAILED


def cmd_estimate(args: argparse.Namespace) -> int:
    from bananaflow.catalog.loader import load_catalog
    from bananaflow.planning.estimate import estimate
    from bananaflow.providers.models import default_model_id
    from bananaflow.planning.work import JobOptions

    model = args.model or os.environ.get("BANANAFLOW_MODEL") or default_model_id()
    JobOptions(model=model, image_size=args.size, aspect_ratio=args.aspect).validate()
    if args.concurrency < 1 or args.latency <= 0:
        raise BananaflowError("--concurrency must be at least 1 and --latency positive")
    catalog = load_catalog(args.catalog, encoding=args.encoding)
    result = estimate(
        len(catalog.accepted), model=model, image_size=args.size, max_in_flight=args.concurrency,
        requests_per_minute=args.rpm, images_per_minute=args.ipm, requests_per_day=args.rpd,
        spend_per_10min_usd=args.spend_cap, latency_s=args.latency,
    )
    for line in result.lines():
        print(line)
    if catalog.rejected:
        print(f"rejected:      {len(catalog.rejected)} catalog rows would be skipped (see `bananaflow run`)")
    return EXIT_OK


def run_flow(parameters: dict, *, show_progress: bool = True) -> dict:
    """Run the catalog flow in this process, with a progress bar, and print its summary."""
    from bananaflow.cli.console import print_summary, progress_bar

    quiet_prefect_console(show_progress)
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images

    with progress_bar(show_progress):
        summary = catalog_to_images(**parameters)
    print_summary(summary)
    return summary


class _NoTracebackForUserErrors(logging.Filter):
    """A user's mistake (a bad template field, an unreadable catalog) is reported in one
    line by the CLI and in the flow run's state; a traceback would only bury it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], BananaflowError):
            record.exc_info, record.exc_text = None, None
        return True


def quiet_prefect_console(quiet: bool) -> None:
    """With a progress bar on screen, Prefect's INFO lines go to the UI only."""
    install_log_redaction()
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).addFilter(_NoTracebackForUserErrors())
    if not quiet:
        return
    # Only the console handler: the API handler must still send INFO lines to the UI.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


if __name__ == "__main__":
    sys.exit(main())
