"""The command line's options, grouped as ``bananaflow.options`` groups them, and the one
place that turns parsed arguments into ``RunOptions``."""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from bananaflow.errors import BananaflowError
from bananaflow.options import (
    CatalogOptions,
    DeliveryOptions,
    ExecutionOptions,
    ImageOptions,
    LimitOptions,
    RunOptions,
    SpendOptions,
)

#: CLI flag of each option field, for messages in CLI terms ("--deadline-hours", not "deadline_hours").
FLAGS = {
    "template": "--template", "model": "--model", "image_size": "--size", "aspect_ratio": "--aspect",
    "variant": "--variant", "output_preset": "--output-preset", "job": "--job", "encoding": "--encoding",
    "catalog_preset": "--catalog-preset", "column_map": "--map", "previous_manifest": "--previous-manifest",
    "bucket": "--bucket", "prefix": "--prefix", "writeback": "--writeback", "public_base_url": "--public-base-url",
    "max_in_flight": "--concurrency", "requests_per_minute": "--rpm", "images_per_minute": "--ipm",
    "requests_per_day": "--rpd", "spend_per_10min_usd": "--spend-cap", "adaptive": "--adaptive",
    "max_cost_usd": "--max-cost", "fallback_models": "--fallback-model", "allow_fallback": "--no-fallback",
    "retry_blocked": "--retry-blocked",
    "mode": "--mode", "deadline_hours": "--deadline-hours", "batch_max_items": "--batch-max-items",
    "batch_poll_max_s": "--batch-poll-max", "include_unpublished": "--include-unpublished", "sku_from": "--sku-from",
}


def add_image_arguments(p: argparse.ArgumentParser) -> None:
    """What to make (``ImageOptions``)."""
    p.add_argument("--template", help="Jinja2 prompt template file (default: the built-in product-shot prompt)")
    p.add_argument("--size", help="image size: 512 (3.1 Flash), 1K, 2K, 4K (default: 1K)")
    p.add_argument("--aspect", help="aspect ratio, e.g. 1:1, 4:5, 16:9 (default: 1:1)")
    p.add_argument("--model", help="model id (default: BANANAFLOW_MODEL or gemini-3-pro-image)")
    p.add_argument("--variant", help="variant name used in object keys (default: main)")


def add_catalog_arguments(p: argparse.ArgumentParser) -> None:
    """How to read the catalog and what to make of it (``CatalogOptions`` + the job spec)."""
    p.add_argument("--encoding", help="catalog text encoding, e.g. cp1252, gb18030 (default: UTF-8 or UTF-16 with a BOM; "
                   "otherwise detected, and refused when it cannot be told for sure)")
    p.add_argument("--job", help="job spec (YAML or TOML): variants, templates, presets; overrides the single-template flags")
    p.add_argument("--catalog-preset",
                   help="export format: shopify, merchant, woocommerce or none (default: recognised from the columns)")
    p.add_argument(
        "--map", action="append", default=[], metavar='FIELD="Column"',
        help='use a column of the file as one of our fields, e.g. --map sku="Variant SKU" (repeatable)',
    )
    p.add_argument("--previous-manifest", help="manifest of an earlier run (path, s3:// URI, or 'latest' under "
                   "--prefix): only new or changed products are generated")
    p.add_argument("--include-unpublished", action="store_true",
                   help="also make images for drafts, archived/unpublished products, gift cards and app "
                   "pseudo-products such as shipping protection (default: skipped and counted)")
    p.add_argument("--sku-from", metavar="COLUMN",
                   help="make the SKU of a list without one from this column (e.g. title or link)")


def add_limit_arguments(p: argparse.ArgumentParser) -> None:
    """The project's limits as AI Studio shows them (``LimitSettings``)."""
    g = p.add_argument_group("limits (per project and model; BANANAFLOW_REDIS_URL shares them between workers)")
    g.add_argument("--concurrency", type=int, help="requests in flight at once (default: 8)")
    g.add_argument("--rpm", type=float, help="requests per minute your project allows")
    g.add_argument("--ipm", type=float, help="images per minute your project allows")
    g.add_argument("--rpd", type=int, help="requests per day (resets at midnight Pacific)")
    g.add_argument("--spend-cap", type=float, metavar="USD",
                   help="spend limit per rolling 10 minutes ($10 Tier 1, $50 Tier 2, $200 Tier 3)")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """Everything ``bananaflow run`` takes: one flag per ``RunOptions`` field."""
    p.add_argument("catalog", help="catalog file: CSV/TSV/JSONL/Parquet/XLSX, local path or s3://bucket/key")
    p.add_argument("--bucket", help="S3 bucket for images and manifests (endpoint/credentials from AWS_* env)")
    p.add_argument("--prefix", help="key prefix (default: bananaflow)")
    add_image_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs instead)")
    p.add_argument("--mode", choices=("realtime", "batch", "auto"),
                   help="realtime calls, Gemini Batch mode (half price, results within 24 h), or auto: "
                   "batch for large jobs whose deadline allows (default: the job spec's run.mode, else realtime)")
    p.add_argument("--deadline-hours", type=float,
                   help="the job must finish within this many hours (auto picks realtime under 24)")
    p.add_argument("--batch-max-items", type=int, help="images per batch at most (default: 500)")
    p.add_argument("--batch-poll-max", type=float, metavar="SECONDS",
                   help="longest wait between two polls of a batch (default: 300)")
    add_catalog_arguments(p)
    p.add_argument("--output-preset", help="marketplace preset for the single-template variant (e.g. amazon-main)")
    p.add_argument("--writeback", choices=("shopify", "merchant"), help="write the new image URLs back next to the manifest")
    p.add_argument("--public-base-url", help="public URL the bucket is served under (default: presigned URLs)")
    add_limit_arguments(p)
    g = p.add_argument_group("fallback and budget")
    g.add_argument("--fallback-model", action="append", default=[], metavar="MODEL",
                   help="model to use when the main one is overloaded, failing or out of quota (repeatable, in order)")
    g.add_argument("--no-fallback", action="store_true", help="this variant must be made by --model only")
    g.add_argument("--retry-blocked", action="store_true",
                   help="send again items an earlier run saw blocked by the safety filter (same prompt)")
    g.add_argument("--max-cost", type=float, metavar="USD",
                   help="stop sending at this spend (worst case reserved per call); the rest is deferred")
    g.add_argument("--adaptive", action="store_true",
                   help="learn requests/min from 429/503 answers (AIMD); starts unmetered (in-flight cap only) "
                        "until the first 429, or slow-starts from --rpm")


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


def options_from_args(args: argparse.Namespace) -> RunOptions:
    """The ``RunOptions`` a command line describes; flags not given stay empty, so the
    models' defaults (and blocks, where a run uses them) decide. Bad values are one line
    naming the flag."""
    get = lambda name: getattr(args, name, None)  # noqa: E731 (not every command has every flag)
    groups: dict[str, tuple[type, dict[str, Any]]] = {
        "images": (ImageOptions, dict(job=get("job"), template=get("template"), model=get("model"),
                                      image_size=get("size"), aspect_ratio=get("aspect"), variant=get("variant"),
                                      output_preset=get("output_preset"))),
        "reading": (CatalogOptions, dict(encoding=get("encoding"), catalog_preset=get("catalog_preset"),
                                         column_map=parse_map(get("map") or []) or None,
                                         previous_manifest=get("previous_manifest"),
                                         include_unpublished=get("include_unpublished") or None,
                                         sku_from=get("sku_from"))),
        "delivery": (DeliveryOptions, dict(bucket=get("bucket"), prefix=get("prefix"), writeback=get("writeback"),
                                           public_base_url=get("public_base_url"))),
        "limits": (LimitOptions, dict(max_in_flight=get("concurrency"), requests_per_minute=get("rpm"),
                                      images_per_minute=get("ipm"), requests_per_day=get("rpd"),
                                      spend_per_10min_usd=get("spend_cap"), adaptive=get("adaptive") or None)),
        "spend": (SpendOptions, dict(max_cost_usd=get("max_cost"), fallback_models=get("fallback_model") or None,
                                     allow_fallback=False if get("no_fallback") else None,
                                     retry_blocked=True if get("retry_blocked") else None)),
        "execution": (ExecutionOptions, dict(mode=get("mode"), deadline_hours=get("deadline_hours"),
                                             batch_max_items=get("batch_max_items"),
                                             batch_poll_max_s=get("batch_poll_max"))),
    }
    built = {}
    for name, (model, values) in groups.items():
        try:
            built[name] = model.model_validate({k: v for k, v in values.items() if v is not None})
        except ValidationError as exc:
            raise BananaflowError(_in_cli_terms(exc)) from None
    return RunOptions(**built)


def _in_cli_terms(exc: ValidationError) -> str:
    """``--deadline-hours must be greater than 0, got 0`` from pydantic's first error."""
    problem = exc.errors()[0]
    field = str(problem["loc"][0]) if problem["loc"] else ""
    flag = FLAGS.get(field, field)
    message = problem["msg"].removeprefix("Input ").removeprefix("Value error, ")
    message = message[0].lower() + message[1:]
    return f"{flag} {message}, got {problem.get('input')!r}" if flag else message
