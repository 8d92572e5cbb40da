"""Where a run's review lives in the bucket, and publishing a finished run's approvals.

A run that leaves images for a person keeps, beside its manifest, what a later review needs to
publish without the flow: ``review/context.json`` (the catalog, the write-back settings and
variant order). While it is paused, the images it waits on are a manifest of their own under
``<prefix>/review/waiting/<run>/`` (what ``bananaflow review`` lists).

Once the run has finished, ``publish_review`` applies a reviewer's decisions to its newest
manifest and writes a new manifest and write-back beside the run's, in a sibling folder
``runs/<UTC stamp>-<run>.review/``: the newest manifest of the bucket, so the next delta run
skips what was approved and does not make again what was rejected.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from bananaflow.errors import ConfigurationError
from bananaflow.landing.keys import join_key, sanitize_sku
from bananaflow.landing.manifest import ManifestRow, write_manifest
from bananaflow.landing.review_log import save_decisions
from bananaflow.landing.run_history import RunManifest, load_run_manifest, manifest_keys
from bananaflow.landing.storage import ImageStore
from bananaflow.planning.jobspec import WritebackSpec
from bananaflow.quality.review_apply import apply_decisions
from bananaflow.quality.review_board import ReviewPlan
from bananaflow.reports.writeback import merchant_supplemental, shopify_csv

__all__ = [
    "REVIEW_SUFFIX", "PublishContext", "PublishedReview", "find_run_manifest", "load_context", "publish_review",
    "save_context", "waiting_prefix",
]

#: A review's manifest folder is the run's name with this suffix.
REVIEW_SUFFIX = ".review"
CONTEXT_NAME = "review/context.json"
WRITEBACK_FILES = {"shopify": ("shopify_products.csv", "text/csv; charset=utf-8"),
                   "merchant": ("merchant_supplemental.tsv", "text/tab-separated-values; charset=utf-8")}


@dataclass(frozen=True)
class PublishContext:
    """What publishing a run's images needs besides its manifest."""

    catalog: str
    variants: tuple[str, ...]
    writeback: dict[str, object]
    encoding: str | None = None

    def to_json(self) -> bytes:
        return json.dumps({"catalog": self.catalog, "variants": list(self.variants), "writeback": self.writeback,
                           "encoding": self.encoding}, sort_keys=True).encode("utf-8")


def save_context(store: ImageStore, run_prefix: str, context: PublishContext) -> None:
    store.put_bytes(join_key(run_prefix, CONTEXT_NAME), context.to_json(), "application/json")


def load_context(store: ImageStore, run_prefix: str) -> PublishContext | None:
    key = join_key(run_prefix, CONTEXT_NAME)
    if not store.exists(key):
        return None
    data = json.loads(store.get_bytes(key))
    return PublishContext(str(data["catalog"]), tuple(data.get("variants") or ()), dict(data.get("writeback") or {}),
                          data.get("encoding"))


def waiting_prefix(prefix: str, run: str) -> str:
    """Where a paused run keeps the manifest of the images it waits on."""
    return join_key(prefix, "review", "waiting", sanitize_sku(run))


def find_run_manifest(store: ImageStore, run: str) -> RunManifest | None:
    """The newest manifest of the run named ``run``: its own, or the last review's beside it."""
    names = {run, run + REVIEW_SUFFIX}
    keys = [k for k in manifest_keys(store) if k.rsplit("/", 2)[-2].partition("-")[2] in names]
    return load_run_manifest(store, keys[-1]) if keys else None


@dataclass(frozen=True)
class PublishedReview:
    manifest: dict[str, str]
    writeback: str | None
    decisions: str | None
    approved: int
    rejected: int


def publish_review(store: ImageStore, run: str, rows: list[ManifestRow], plan: ReviewPlan) -> PublishedReview:
    """A finished run's decisions: approved images copied to their published keys, the
    decisions recorded, and a new manifest (and write-back, when the run wrote one) written
    in ``runs/<stamp>-<run>.review/``."""
    first = find_run_manifest(store, run)
    if first is None:
        raise ConfigurationError(f"bananaflow review: no manifest of run {run!r} under s3://{store.bucket}/{store.prefix}")
    decided = list(apply_decisions(rows, plan.decisions, store, store.prefix))
    decisions_uri = save_decisions(store, store.prefix, run, plan.decisions)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = join_key(store.prefix, "runs", f"{stamp}-{run}{REVIEW_SUFFIX}")
    manifest = write_manifest(decided, store, target)
    writeback = _write_back(store, run, decided, target)
    counts = [r.status for r, before in zip(decided, rows) if r.status != before.status]
    return PublishedReview(manifest, writeback, decisions_uri, counts.count("succeeded"), counts.count("rejected"))


def _write_back(store: ImageStore, run: str, rows: list[ManifestRow], target: str) -> str | None:
    """The run's write-back again, now with the approved images (None when it wrote none)."""
    context = None
    for key in reversed(manifest_keys(store)):
        run_dir = key.rsplit("/", 2)[-2]
        if run_dir.partition("-")[2] == run:
            context = load_context(store, key.rsplit("/", 1)[0])
            break
    if context is None or not context.writeback.get("format"):
        return None
    spec = WritebackSpec.model_validate(context.writeback)
    assert spec.format is not None
    name, content_type = WRITEBACK_FILES[spec.format]
    if spec.format == "shopify":
        data = shopify_csv(context.catalog, rows, store, spec, context.variants, encoding=context.encoding)
    else:
        data = merchant_supplemental(rows, store, spec, context.variants)
    key = join_key(target, name)
    store.put_bytes(key, data, content_type)
    return store.uri(key)
