"""Delta runs: a nightly refresh pays only for products that are new or changed.

An item's key stem already digests everything that shapes its image: the prompt rendered
from the fields its template uses, the template itself, model, ratio, size and reference
photo locations. So "unchanged" is exact and cheap: the previous run's manifest has a done
row for the same (SKU, variant) whose key has the same stem. Such items are reported
``skipped_unchanged`` from the manifest alone — no provider call and not even an S3 request
per item, which is what makes a 100k-SKU refresh with 200 changes take seconds.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bananaflow.errors import BananaflowError, ConfigurationError, StorageError
from bananaflow.landing.manifest import ManifestRow, read_manifest
from bananaflow.landing.run_history import latest_manifest_key
from bananaflow.planning.work import WorkItem

log = logging.getLogger("bananaflow.planning.delta")

#: Previous outcomes that mean "an image for exactly this request exists".
DONE_STATUSES = frozenset({"succeeded", "skipped_exists", "skipped_unchanged"})


@dataclass
class DeltaSplit:
    to_make: list[WorkItem]
    unchanged: list[ManifestRow]


def _stem(key: str) -> str:
    return key.rsplit(".", 1)[0] if "." in key.rsplit("/", 1)[-1] else key


def split_unchanged(items: Iterable[WorkItem], previous: Iterable[ManifestRow], run_id: str) -> DeltaSplit:
    """Items to generate, and rows for the ones the previous run already made as planned."""
    done: dict[tuple[str, str], ManifestRow] = {}
    for row in previous:
        if row.status in DONE_STATUSES and row.key:
            done[(row.sku, row.variant)] = row
    now = datetime.now(UTC)
    to_make: list[WorkItem] = []
    unchanged: list[ManifestRow] = []
    for item in items:
        before = done.get((item.sku, item.variant))
        if before is None or _stem(before.key) != item.key_stem:
            to_make.append(item)
            continue
        unchanged.append(
            dataclasses.replace(
                before,
                run_id=run_id,
                row_number=item.row_number,
                status="skipped_unchanged",
                error_class="",
                error_message="",
                latency_s=None,
                attempts=0,
                prompt_tokens=None,
                image_tokens=None,
                output_tokens=None,
                cost_usd=0.0,
                prompt_sha256=item.prompt_sha256,
                started_at=now,
                finished_at=now,
            )
        )
    return DeltaSplit(to_make, unchanged)


def load_previous(source: str) -> list[ManifestRow]:
    """The previous run's manifest (CSV or Parquet, local or ``s3://``), or a clear error."""
    try:
        return read_manifest(source)
    except FileNotFoundError:
        raise ConfigurationError(f"previous manifest {source} does not exist") from None
    except BananaflowError as exc:
        raise ConfigurationError(f"cannot read previous manifest {source}: {exc.message}") from None
    except (ValueError, TypeError, OSError) as exc:
        raise ConfigurationError(f"{source} is not a bananaflow manifest: {str(exc)[:200]}") from None


#: ``--previous-manifest latest``: the newest run's manifest under the prefix, for cron jobs.
LATEST = "latest"


def latest_manifest(store: Any, prefix: str) -> str | None:
    """URI of the newest ``{prefix}/runs/<UTC stamp>-<name>/manifest.parquet``, or None on
    the first night. A bucket that cannot be listed is a setting to fix before the run."""
    try:
        newest = latest_manifest_key(store, prefix)
    except StorageError as exc:
        raise ConfigurationError(f"cannot list earlier runs: {exc.message}") from None
    return store.uri(newest) if newest else None


def split_previous(
    items: list[WorkItem], previous_manifest: str | None, run_id: str, *, store: Any = None, prefix: str = ""
) -> tuple[list[WorkItem], list[ManifestRow]]:
    """Items to generate and rows for unchanged ones; everything when there is no manifest.
    ``latest`` (with ``store``) means the newest manifest of an earlier run under ``prefix``."""
    if previous_manifest == LATEST and store is not None:
        previous_manifest = latest_manifest(store, prefix)
        if previous_manifest is None:
            log.info("no earlier run under %s: every item is new", prefix or "the bucket")
    if not previous_manifest:
        return list(items), []
    split = split_unchanged(items, load_previous(previous_manifest), run_id)
    return split.to_make, split.unchanged
