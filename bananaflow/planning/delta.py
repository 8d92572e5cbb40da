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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from bananaflow.errors import BananaflowError, ConfigurationError, StorageError
from bananaflow.landing.manifest import ManifestRow, iter_manifest
from bananaflow.landing.review_store import item_stem_of
from bananaflow.landing.run_history import latest_manifest_key
from bananaflow.landing.verdict import NEEDS_REVIEW, REJECTED
from bananaflow.planning.work import WorkItem
from bananaflow.planning.work_store import WorkStore

log = logging.getLogger("bananaflow.planning.delta")

#: Previous outcomes that mean "an image for exactly this request exists".
DONE_STATUSES = frozenset({"succeeded", "skipped_exists", "skipped_unchanged"})
#: Previous outcomes of the quality gate that a person has to settle: the same row and
#: prompt would fail the same way, so they are not made again (``--retry-rejected`` does).
#: ``unchecked`` is not here: such an item goes to the pipeline, which judges the kept image.
WAITING_STATUSES = frozenset({NEEDS_REVIEW, REJECTED})


@dataclass
class DeltaSplit:
    to_make: list[WorkItem]
    unchanged: list[ManifestRow]


def split_unchanged(items: Iterable[WorkItem], previous: Iterable[ManifestRow], run_id: str, *,
                    retry_rejected: bool = False) -> DeltaSplit:
    """Items to generate, and rows for the ones the previous run already made as planned
    (the same rule a run applies to its work store, see ``drop_unchanged``)."""
    store = WorkStore()
    try:
        store.add(items)
        now = datetime.now(UTC)
        batches = store.drop_unchanged(_done(previous, retry_rejected), partial(unchanged_row, run_id=run_id, now=now))
        unchanged = [row for batch in batches for row in batch]
        return DeltaSplit(list(store), unchanged)
    finally:
        store.close()


def _done(rows: Iterable[ManifestRow], retry_rejected: bool = False) -> Iterator[ManifestRow]:
    """Rows that mean "an image for exactly this request exists" (or waits for a person:
    its key is under ``review/``, matched to the item by the item's own stem)."""
    for row in rows:
        if not row.key:
            continue
        if row.status in DONE_STATUSES:
            yield row
        elif row.status in WAITING_STATUSES and not retry_rejected:
            # matched by the item's own stem; ``unchanged_row`` takes the review key back from the URI
            yield dataclasses.replace(row, key=item_stem_of(row.key) + "." + row.key.rsplit(".", 1)[-1])


def unchanged_row(before: ManifestRow, item: WorkItem, *, run_id: str, now: datetime) -> ManifestRow:
    """This run's row for an item the previous run made exactly as planned (``before``);
    one that waits for a person keeps its status and review key, and says why nothing was sent."""
    if before.status in WAITING_STATUSES:
        key = _key_of_uri(before.uri) or before.key  # ``_done`` matched it by the item's own stem
        verb = "rejected by a person" if before.status == REJECTED else "left for review"
        note = (f"not sent: {verb} by run {before.run_id}; unchanged since, so it would fail the same way "
                "(--retry-rejected makes it again)")
        return dataclasses.replace(
            before, run_id=run_id, row_number=item.row_number, key=key, error_message=note, latency_s=None,
            attempts=0, prompt_tokens=None, image_tokens=None, output_tokens=None, cost_usd=0.0, judge_cost_usd=0.0,
            qa_attempts=0, started_at=now, finished_at=now, retryable=False,
        )
    return dataclasses.replace(
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
        retryable=False,
    )


def _key_of_uri(uri: str) -> str:
    """``s3://bucket/a/b.png`` -> ``a/b.png``."""
    scheme, sep, rest = uri.partition("://")
    return rest.partition("/")[2] if sep else ""


def drop_unchanged(
    store: WorkStore, previous_manifest: str | None, run_id: str, *, manifests: Any = None, prefix: str = "",
    retry_rejected: bool = False,
) -> Iterator[list[ManifestRow]]:
    """Take the items an earlier run already made as planned out of ``store`` and yield their
    rows, a batch at a time; nothing when there is no manifest. The previous manifest's
    rows go to the store's disk, not into memory (see ``split_previous`` for ``latest``)."""
    previous_manifest = _resolve(previous_manifest, manifests, prefix)
    if not previous_manifest:
        return iter(())
    now = datetime.now(UTC)
    return store.drop_unchanged(_done(previous_rows(previous_manifest), retry_rejected),
                                partial(unchanged_row, run_id=run_id, now=now))


def previous_rows(source: str) -> Iterator[ManifestRow]:
    """The previous run's manifest rows (CSV or Parquet, local or ``s3://``) as they are
    built, or a clear error."""
    try:
        yield from iter_manifest(source)
    except FileNotFoundError:
        raise ConfigurationError(f"previous manifest {source} does not exist") from None
    except BananaflowError as exc:
        raise ConfigurationError(f"cannot read previous manifest {source}: {exc.message}") from None
    except (ValueError, TypeError, OSError) as exc:
        raise ConfigurationError(f"{source} is not a bananaflow manifest: {str(exc)[:200]}") from None


def load_previous(source: str) -> list[ManifestRow]:
    """The previous run's manifest (CSV or Parquet, local or ``s3://``), or a clear error."""
    return list(previous_rows(source))


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
    previous_manifest = _resolve(previous_manifest, store, prefix)
    if not previous_manifest:
        return list(items), []
    split = split_unchanged(items, load_previous(previous_manifest), run_id)
    return split.to_make, split.unchanged


def _resolve(previous_manifest: str | None, store: Any, prefix: str) -> str | None:
    """``latest`` (with an image store to list) as the newest earlier run's manifest."""
    if previous_manifest == LATEST and store is not None:
        previous_manifest = latest_manifest(store, prefix)
        if previous_manifest is None:
            log.info("no earlier run under %s: every item is new", prefix or "the bucket")
    return previous_manifest
