"""Landing a paid-for image: upload it with its metadata and describe it as a manifest row.

Realtime calls (``bananaflow.generation.pipeline``) and Batch-mode results (``bananaflow.batch``) end
the same way once they hold a verified ``GeneratedImage``, so that ending lives here, once:
the object key is the item's fixed ``key_stem`` plus the extension of the format that came
back, the object carries ``bananaflow-*`` metadata a re-run reads back, and an upload that
fails puts the bytes in the spool rather than dropping them.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bananaflow.errors import BananaflowError, ContentBlocked, ProviderError, StorageError, error_status
from bananaflow.landing.blocked import BlockedMarker, blocked_key, forget_block, read_block, remember_block
from bananaflow.landing.finishing import (
    QAFailed,
    derivative_keys_from_names,
    derivative_names,
    keys_json,
    qa_failed_key,
    qa_failed_stem,
    upload_derivatives,
)
from bananaflow.landing.keys import ext_for_mime
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.output_presets import Finished
from bananaflow.landing.spool import Spool
from bananaflow.landing.storage import ImageStore
from bananaflow.planning.work import WorkItem
from bananaflow.providers.base import GeneratedImage, Usage
from bananaflow.secrets import excerpt, redact

log = logging.getLogger("bananaflow.generation.lander")

#: Object metadata bananaflow writes, read back to recognise its own objects on a re-run.
META_PREFIX = "bananaflow-"

#: S3 allows 2 KB of metadata per object. A merchant's SKU can be 1,000 characters (and
#: triple in size once percent-encoded); the key and the manifest keep it whole, so the
#: metadata copy is cut rather than let an upload of a paid image fail.
METADATA_SKU_CHARS = 64


@functools.cache
def meta_key(name: str) -> str:
    """``bananaflow-<name>``, one shared string per name: every object's metadata uses the
    same key objects instead of building 17 new strings per image (a store that keeps
    metadata, such as the in-memory one, would otherwise hold 1 KB of keys per image)."""
    return META_PREFIX + name


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class ImageLander:
    """Stores images of one run in one store; ``mode`` ("realtime" or "batch") is written
    into every row and object it makes."""

    def __init__(self, store: ImageStore, *, run_id: str, spool: Spool | None = None, mode: str = "realtime") -> None:
        self.store = store
        self.run_id = run_id
        self.spool = spool
        self.mode = mode

    async def land(
        self,
        item: WorkItem,
        image: GeneratedImage,
        *,
        attempts: int,
        latency_s: float,
        started_at: str,
        batch_name: str = "",
        finished: Finished | None = None,
        endpoint: str = "",
    ) -> ManifestRow:
        """Upload ``image`` under the item's key; a failed upload spools the bytes.

        With an output preset (``finished``), an image that passed QA is uploaded with its
        derivatives; one that failed is kept under a ``qa-failed`` key (it was paid for) and
        its row says ``qa_failed`` with the measured numbers.
        """
        key = f"{item.key_stem}.{ext_for_mime(image.mime_type)}"
        metadata = self.metadata(item, image, attempts, latency_s, batch_name)
        row = self.success_row(item, image, key, attempts, latency_s, started_at, batch_name)
        if endpoint:  # which endpoint of a fallback chain made it
            row.endpoint = endpoint
            metadata[meta_key("endpoint")] = endpoint
        if finished is not None:
            row.qa = finished.report.to_json()
            if not finished.report.passed:
                key = qa_failed_key(item.key_stem, ext_for_mime(image.mime_type))
                failure = QAFailed(finished.report.describe())
                row.status, row.error_class, row.error_message = failure.status, "QAFailed", failure.message[:500]
                row.key, row.uri = key, self.store.uri(key)
                metadata[meta_key("qa-problems")] = row.error_message[:300]
            else:
                metadata[meta_key("derivatives")] = derivative_names(finished)
        journal, derivatives, error = await asyncio.to_thread(self._store_paid, item, key, image, metadata, finished)
        if error is not None:
            metadata.pop(meta_key("derivatives"), None)
            return self._spool_or_fail(row, key, image, metadata, error, journal)
        if derivatives is not None:
            row.derivatives = keys_json(derivatives)
        return row

    def _store_paid(
        self, item: WorkItem, key: str, image: GeneratedImage, metadata: dict[str, str], finished: Finished | None
    ) -> tuple[Path | None, dict[str, str] | None, StorageError | None]:
        """Journal, derivatives, upload, then drop the journal, in one trip to a worker thread
        (each trip costs the event loop a hand-off, thousands of times a run). Returns the
        journal, the derivative keys, and the S3 error that stopped the upload, if any."""
        journal = self._journal(key, image, metadata)
        try:
            derivatives = None
            if finished is not None and finished.report.passed:
                derivatives = upload_derivatives(self.store, item.key_stem, finished, metadata)
            self.store.put_image(key, image.data, image.mime_type, metadata)
        except StorageError as exc:
            return journal, None, exc
        if journal is not None and self.spool is not None:
            self.spool.discard(key)
        return journal, derivatives, None

    def _journal(self, key: str, image: GeneratedImage, metadata: dict[str, str]) -> Path | None:
        """Write the paid bytes to the spool *before* uploading, so a crash between the
        provider's answer and the upload loses nothing: the next run uploads them."""
        if self.spool is None:
            return None
        try:
            return self.spool.put(key, image.data, image.mime_type, metadata)
        except OSError as exc:  # full or unwritable: upload straight away, unprotected
            log.warning("could not keep %s in the local spool before upload: %s", key, exc)
            return None

    async def spooled_row(self, item: WorkItem, key: str, started_at: str, t0: float) -> ManifestRow:
        """Paid for already (by this run's earlier attempt or a crashed one) and waiting
        locally: upload it now if S3 answers, never generate it again."""
        assert self.spool is not None
        try:
            await asyncio.to_thread(self.spool.upload, key, self.store)
        except StorageError as exc:
            row = self.failure_row(item, exc, attempts=0, started_at=started_at, t0=t0)
            row.status, row.key, row.uri = "spooled", key, self.store.uri(key)
            row.error_message = f"upload failed ({exc.message}); image kept in the local spool, uploaded on the next run"
            return row
        return await self.existing_row(item, key, started_at, t0)

    async def qa_failure_of_this_run(self, item: WorkItem, started_at: str, t0: float) -> ManifestRow | None:
        """This run already paid for an image of ``item`` that failed QA (a retried chunk):
        report that failure again instead of paying a third time."""
        key = await asyncio.to_thread(self.store.find_existing, qa_failed_stem(item.key_stem))
        if key is None:
            return None
        row = await self.existing_row(item, key, started_at, t0)
        if row.status != "succeeded":  # "succeeded" here means: stored by this same run
            return None
        head = await asyncio.to_thread(self.store.head, key)
        row.status, row.error_class = "qa_failed", "QAFailed"
        row.error_message = head.metadata.get(meta_key("qa-problems"), "QA failed earlier in this run")
        row.derivatives = ""
        return row

    def _spool_or_fail(
        self,
        row: ManifestRow,
        key: str,
        image: GeneratedImage,
        metadata: dict[str, str],
        exc: StorageError,
        journal: Path | None = None,
    ) -> ManifestRow:
        """The image is paid for: keep it locally rather than drop it."""
        row.status = "failed"
        row.error_class = type(exc).__name__
        if self.spool is None:
            row.error_message = f"upload failed and no spool is configured: {exc.message}"
            return row
        path = journal
        if path is None:
            try:
                path = self.spool.put(key, image.data, image.mime_type, metadata)
            except OSError as spool_exc:
                row.error_message = f"upload failed ({exc.message}) and spooling failed ({spool_exc})"
                return row
        row.status = "spooled"
        row.error_message = f"upload failed ({exc.message}); image kept at {path}, uploaded on the next run"
        return row

    def metadata(
        self, item: WorkItem, image: GeneratedImage, attempts: int, latency: float, batch_name: str = ""
    ) -> dict[str, str]:
        values = {
            "run-id": self.run_id,
            "sku": item.sku[:METADATA_SKU_CHARS],
            "variant": item.variant,
            "row": str(item.row_number),
            "model": image.model or item.model,
            "image-size": item.image_size,
            "aspect-ratio": item.aspect_ratio,
            "width": str(image.width),
            "height": str(image.height),
            "attempts": str(attempts),
            "latency-s": f"{latency:.3f}",
            "prompt-tokens": str(image.usage.prompt_tokens),
            "image-tokens": str(image.usage.image_tokens),
            "output-tokens": str(image.usage.candidates_tokens + image.usage.thoughts_tokens),
            "cost-usd": f"{image.cost_usd:.6f}",
            "prompt-sha256": item.prompt_sha256,
            "mode": self.mode,
        }
        if batch_name:
            values["batch"] = batch_name
        return {meta_key(k): v for k, v in values.items()}

    async def existing_row(self, item: WorkItem, key: str, started_at: str, t0: float) -> ManifestRow:
        """An object under this item's key exists. Made by this same run (a retried chunk):
        report it as the success it was. Made earlier: ``skipped_exists``, nothing paid."""
        head = await asyncio.to_thread(self.store.head, key)
        meta = {k[len(META_PREFIX):]: v for k, v in head.metadata.items() if k.startswith(META_PREFIX)}
        same_run = meta.get("run-id") == self.run_id
        row = ManifestRow(
            run_id=self.run_id,
            row_number=item.row_number,
            sku=item.sku,
            variant=item.variant,
            status="succeeded" if same_run else "skipped_exists",
            key=key,
            uri=self.store.uri(key),
            model=meta.get("model", item.model),
            endpoint=meta.get("endpoint", ""),
            image_size=item.image_size,
            aspect_ratio=item.aspect_ratio,
            mime_type=head.content_type,
            bytes=head.size,
            width=_int(meta.get("width")),
            height=_int(meta.get("height")),
            prompt_sha256=item.prompt_sha256,
            started_at=started_at,
            finished_at=now_iso(),
            mode=meta.get("mode", "realtime") if same_run else self.mode,
            batch_name=meta.get("batch", "") if same_run else "",
            derivatives=keys_json(derivative_keys_from_names(item.key_stem, meta.get("derivatives", ""))),
        )
        if same_run:
            row.latency_s = float(meta.get("latency-s", 0) or 0)
            row.attempts = _int(meta.get("attempts"))
            row.prompt_tokens = _int(meta.get("prompt-tokens"))
            row.image_tokens = _int(meta.get("image-tokens"))
            row.output_tokens = _int(meta.get("output-tokens"))
            row.cost_usd = float(meta.get("cost-usd", 0) or 0)
        else:
            row.latency_s = round(time.monotonic() - t0, 3)
        return row

    def success_row(
        self,
        item: WorkItem,
        image: GeneratedImage,
        key: str,
        attempts: int,
        latency: float,
        started_at: str,
        batch_name: str = "",
    ) -> ManifestRow:
        return ManifestRow(
            run_id=self.run_id,
            row_number=item.row_number,
            sku=item.sku,
            variant=item.variant,
            status="succeeded",
            key=key,
            uri=self.store.uri(key),
            model=image.model or item.model,
            image_size=item.image_size,
            aspect_ratio=item.aspect_ratio,
            mime_type=image.mime_type,
            bytes=len(image.data),
            width=image.width,
            height=image.height,
            latency_s=round(latency, 3),
            attempts=attempts,
            prompt_tokens=image.usage.prompt_tokens,
            image_tokens=image.usage.image_tokens,
            output_tokens=image.usage.candidates_tokens + image.usage.thoughts_tokens,
            cost_usd=image.cost_usd,
            prompt_sha256=item.prompt_sha256,
            started_at=started_at,
            finished_at=now_iso(),
            mode=self.mode,
            batch_name=batch_name,
        )

    def failure_row(
        self,
        item: WorkItem,
        exc: BaseException,
        *,
        attempts: int,
        started_at: str,
        t0: float,
        batch_name: str = "",
    ) -> ManifestRow:
        """The row of an item that ended with ``exc``; its status is ``error_status(exc)``."""
        message = exc.message if isinstance(exc, BananaflowError) else excerpt(f"{type(exc).__name__}: {exc}", 500)
        row = ManifestRow(
            run_id=self.run_id,
            row_number=item.row_number,
            sku=item.sku,
            variant=item.variant,
            status=error_status(exc),
            error_class=type(exc).__name__,
            error_message=message[:500],
            key="",
            uri="",
            model=item.model,
            image_size=item.image_size,
            aspect_ratio=item.aspect_ratio,
            latency_s=round(time.monotonic() - t0, 3),
            attempts=attempts,
            prompt_sha256=item.prompt_sha256,
            started_at=started_at,
            finished_at=now_iso(),
            mode=self.mode,
            batch_name=batch_name,
        )
        if isinstance(exc, ProviderError) and (exc.cost_usd or exc.usage):
            # a blocked or image-less answer is billed too: the row says what and how much
            row.cost_usd = round(exc.cost_usd, 6)
            if isinstance(exc.usage, Usage):
                row.prompt_tokens = exc.usage.prompt_tokens
                row.image_tokens = exc.usage.image_tokens
                row.output_tokens = exc.usage.candidates_tokens + exc.usage.thoughts_tokens
        return row

    async def standing_block(self, item: WorkItem, sidecars: list[str]) -> BlockedMarker | None:
        """The block an earlier run remembered for this same prompt, when ``sidecars`` (one
        look at the item's keys) shows a marker; None when there is none or the prompt changed."""
        if blocked_key(item.key_stem) not in sidecars:
            return None
        marker = await asyncio.to_thread(read_block, self.store, item.key_stem)
        return marker if marker.prompt_sha256 in ("", item.prompt_sha256) else None

    async def remember_block(self, item: WorkItem, exc: ContentBlocked, started_at: str) -> None:
        """Keep the refusal beside the item's key, so the next run does not pay for it again."""
        marker = BlockedMarker(
            reason=exc.reason or "blocked", message=exc.message, run_id=self.run_id, at=started_at,
            prompt_sha256=item.prompt_sha256, model=exc.model or item.model,
        )
        await asyncio.to_thread(_quietly, remember_block, self.store, item.key_stem, marker)

    async def forget_block(self, item: WorkItem) -> None:
        """The image was made after all (``--retry-blocked``): the old block no longer stands."""
        await asyncio.to_thread(_quietly, forget_block, self.store, item.key_stem)

    def remembered_block_row(self, item: WorkItem, marker: BlockedMarker, started_at: str, t0: float) -> ManifestRow:
        """An earlier run was refused this same prompt: ``blocked`` again, nothing sent."""
        when = marker.at[:16] or "an earlier run"
        note = (
            f"not sent: blocked by the provider on {when} (run {marker.run_id or '?'}): "
            f"{marker.message or marker.reason}; --retry-blocked sends it again"
        )
        row = ManifestRow(
            run_id=self.run_id, row_number=item.row_number, sku=item.sku, variant=item.variant, status="blocked",
            error_class="ContentBlocked", error_message=redact(note)[:500], key="", uri="", model=item.model,
            image_size=item.image_size, aspect_ratio=item.aspect_ratio, latency_s=round(time.monotonic() - t0, 3),
            attempts=0, prompt_sha256=item.prompt_sha256, started_at=started_at, finished_at=now_iso(),
            mode=self.mode, cost_usd=0.0,
        )
        return row


def _quietly(action: Callable[..., None], *args: object) -> None:
    """A marker is a saving, not a duty: S3 failing to keep one must not fail the item."""
    try:
        action(*args)
    except StorageError as exc:
        log.warning("could not update the blocked marker: %s", exc.message)


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
