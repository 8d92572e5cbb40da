"""``bananaflow`` command line.

The engine (this package) does not import Prefect; commands that run flows import them
lazily, so ``bananaflow simulator`` and friends start fast and work without a server.
Exit codes: 0 every item succeeded, already existed or was blocked by the provider's
safety filter; 1 some items failed or were deferred; 2 a usage or configuration error.
"""
from __future__ import annotations

import argparse
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
    p.add_argument("--encoding", help="catalog text encoding (default: UTF-8, BOM or not)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs instead)")
    _add_limit_arguments(p)
    g = p.add_argument_group("fallback and budget")
    g.add_argument("--fallback-model", action="append", default=[], metavar="MODEL",
                   help="model to use when the main one is overloaded, failing or out of quota (repeatable, in order)")
    g.add_argument("--no-fallback", action="store_true", help="this variant must be made by --model only")
    g.add_argument("--max-cost", type=float, metavar="USD",
                   help="stop sending at this spend (worst case reserved per call); the rest is deferred")
    g.add_argument("--adaptive", action="store_true",
                   help="learn requests/min from 429/503 answers (AIMD); --rpm is where it starts")


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

    down = sub.add_parser("down", help="stop the local Prefect server the demo left running")
    down.add_argument("--state-dir", default=".state")

    sim = sub.add_parser("simulator", help="serve the Nano Banana simulator", add_help=False)
    sim.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulator"]:
        from bananaflow.simulator.cli import main as simulator_main

        return simulator_main(argv[1:])
    args = build_parser().parse_args(argv)
    install_log_redaction()
    from bananaflow.console import err_console

    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "estimate":
            return cmd_estimate(args)
        if args.command == "demo":
            from bananaflow.demo import run_demo

            return run_demo(args)
        if args.command == "down":
            from bananaflow.local_prefect import stop_server

            stopped = stop_server(Path(args.state_dir) / "prefect")
            print("stopped the local Prefect server" if stopped else "no local Prefect server was running")
            return EXIT_OK
    except BananaflowError as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        return EXIT_USAGE
    except KeyboardInterrupt:
        err_console.print("interrupted: images already stored are kept; run the same command again to finish")
        return 130
    return EXIT_USAGE


def cmd_run(args: argparse.Namespace) -> int:
    from bananaflow.models import default_model_id
    from bananaflow.work import JobOptions

    if not args.bucket:
        raise BananaflowError("--bucket is required (the S3 bucket for images and manifests)")
    model = args.model or os.environ.get("BANANAFLOW_MODEL") or default_model_id()
    JobOptions(model=model, image_size=args.size, aspect_ratio=args.aspect, variant=args.variant).validate()
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
    from bananaflow.catalog import load_catalog
    from bananaflow.estimate import estimate
    from bananaflow.models import default_model_id
    from bananaflow.work import JobOptions

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
    from bananaflow.console import print_summary, progress_bar

    quiet_prefect_console(show_progress)
    from flows.catalog_flow import catalog_to_images

    with progress_bar(show_progress):
        summary = catalog_to_images(**parameters)
    print_summary(summary)
    return summary


def quiet_prefect_console(quiet: bool) -> None:
    """With a progress bar on screen, Prefect's INFO lines go to the UI only."""
    install_log_redaction()
    if not quiet:
        return
    # Only the console handler: the API handler must still send INFO lines to the UI.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


if __name__ == "__main__":
    sys.exit(main())
