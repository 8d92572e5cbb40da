"""One work item from prompt to stored image, with its manifest row.

This is the engine's unit of work, usable from a plain script or a Prefect task alike:
look for an existing object (never pay twice), generate under the rate controller with
retries, verify, upload with metadata, and describe the outcome as a ``ManifestRow``.
An item never raises: every outcome, including unexpected bugs, becomes a row, so one bad
item cannot take its neighbours down and counts always add up.
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from bananaflow.claims import KeyClaims
from bananaflow.errors import (
    BananaflowError,
    ClaimHeld,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    StorageError,
    error_status,
)
from bananaflow.keys import ext_for_mime
from bananaflow.manifest import ManifestRow
from bananaflow.providers.base import GeneratedImage, ImageProvider, ImageRequest
from bananaflow.quota_breaker import QuotaBreaker
from bananaflow.ratelimit import RateController
from bananaflow.retry import RetryPolicy, call_with_retries
from bananaflow.secrets import redact
from bananaflow.spool import Spool
from bananaflow.storage import ImageStore
from bananaflow.work import WorkItem

log = logging.getLogger("bananaflow.pipeline")

#: Object metadata bananaflow writes, read back to recognise its own objects on a re-run.
META_PREFIX = "bananaflow-"

ItemListener = Callable[[ManifestRow], None]

#: S3 allows 2 KB of metadata per object. A merchant's SKU can be 1,000 characters (and
#: triple in size once percent-encoded); the key and the manifest keep it whole, so the
#: metadata copy is cut rather than let an upload of a paid image fail.
METADATA_SKU_CHARS = 64


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class ItemProcessor:
    """Processes work items against one provider and one store under one controller."""

    def __init__(
        self,
        provider: ImageProvider,
        store: ImageStore,
        controller: RateController,
        policy: RetryPolicy,
        *,
        run_id: str,
        spool: Spool | None = None,
        listeners: Iterable[ItemListener] = (),
        claims: KeyClaims | None = None,
        quota: QuotaBreaker | None = None,
    ) -> None:
        self.provider = provider
        self.store = store
        self.controller = controller
        self.policy = policy
        self.run_id = run_id
        self.spool = spool
        self.listeners = list(listeners)
        self.claims = claims
        self.quota = quota

    async def process_all(self, items: Iterable[WorkItem]) -> list[ManifestRow]:
        """All items concurrently; the controller, not this gather, bounds the requests."""
        return list(await asyncio.gather(*(self.process(item) for item in items)))

    async def process(self, item: WorkItem) -> ManifestRow:
        started_at, t0 = _now(), time.monotonic()
        try:
            row = await self._process(item, started_at, t0)
        except Exception as exc:  # a bug must cost one item, not the run
            log.exception("unexpected error on row %s (sku %s)", item.row_number, item.sku)
            row = self._failure_row(item, exc, attempts=getattr(exc, "attempts", 0), started_at=started_at, t0=t0)
        for listener in self.listeners:
            try:
                listener(row)
            except Exception:  # progress display must never fail an item
                log.debug("progress listener failed", exc_info=True)
        return row

    async def _process(self, item: WorkItem, started_at: str, t0: float) -> ManifestRow:
        if self.spool is not None and (spooled := self.spool.find(item.key_stem)):
            return await self._row_for_spooled(item, spooled, started_at, t0)
        existing = await asyncio.to_thread(self.store.find_existing, item.key_stem)
        if existing is not None:
            return await self._row_for_existing(item, existing, started_at, t0)
        if self.claims is None:
            return await self._generate(item, started_at, t0)
        claimed = await self.claims.claim(
            item.key_stem, lambda: self.store.find_existing(item.key_stem), wait_s=self.claims.lease_s
        )
        if isinstance(claimed, str):  # another run made it while we waited
            return await self._row_for_existing(item, claimed, started_at, t0)
        if not claimed:
            held = ClaimHeld(f"another run is still making this image (claim on {item.key_stem}); run again later")
            return self._failure_row(item, held, attempts=0, started_at=started_at, t0=t0)
        try:
            # It may have landed between our first look and the claim.
            existing = await asyncio.to_thread(self.store.find_existing, item.key_stem)
            if existing is not None:
                return await self._row_for_existing(item, existing, started_at, t0)
            return await self._generate(item, started_at, t0)
        finally:
            await asyncio.to_thread(self.claims.release, item.key_stem)

    async def _generate(self, item: WorkItem, started_at: str, t0: float) -> ManifestRow:
        request = ImageRequest(
            prompt=item.prompt, model=item.model, aspect_ratio=item.aspect_ratio, image_size=item.image_size
        )

        admitted_at: list[float] = []  # latency counts from the first request, not the queue

        async def attempt() -> GeneratedImage:
            async with self.controller.slot():
                if self.quota is not None:
                    self.quota.check()
                if not admitted_at:
                    admitted_at.append(time.monotonic())
                try:
                    return await self.provider.generate(request)
                except RateLimited as exc:
                    self.controller.cooldown(exc.retry_after)
                    raise
                except QuotaExhausted as exc:
                    if self.quota is not None:
                        self.quota.trip(exc)
                    raise

        try:
            image, attempts = await call_with_retries(attempt, self.policy)
        except ProviderError as exc:
            return self._failure_row(item, exc, attempts=getattr(exc, "attempts", 1), started_at=started_at, t0=t0)
        latency = time.monotonic() - (admitted_at[0] if admitted_at else t0)
        key = f"{item.key_stem}.{ext_for_mime(image.mime_type)}"
        metadata = self._metadata(item, image, attempts, latency)
        row = self._success_row(item, image, key, attempts, latency, started_at)
        journal = await asyncio.to_thread(self._journal, key, image, metadata)
        try:
            await asyncio.to_thread(self.store.put_image, key, image.data, image.mime_type, metadata)
        except StorageError as exc:
            return self._spool_or_fail(row, key, image, metadata, exc, journal)
        if journal is not None and self.spool is not None:
            self.spool.discard(key)
        return row

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

    async def _row_for_spooled(self, item: WorkItem, key: str, started_at: str, t0: float) -> ManifestRow:
        """Paid for already (by this run's earlier attempt or a crashed one) and waiting
        locally: upload it now if S3 answers, never generate it again."""
        assert self.spool is not None
        try:
            await asyncio.to_thread(self.spool.upload, key, self.store)
        except StorageError as exc:
            row = self._failure_row(item, exc, attempts=0, started_at=started_at, t0=t0)
            row.status, row.key, row.uri = "spooled", key, self.store.uri(key)
            row.error_message = f"upload failed ({exc.message}); image kept in the local spool, uploaded on the next run"
            return row
        return await self._row_for_existing(item, key, started_at, t0)

    def _metadata(self, item: WorkItem, image: GeneratedImage, attempts: int, latency: float) -> dict[str, str]:
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
        }
        return {META_PREFIX + k: v for k, v in values.items()}

    async def _row_for_existing(self, item: WorkItem, key: str, started_at: str, t0: float) -> ManifestRow:
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
            image_size=item.image_size,
            aspect_ratio=item.aspect_ratio,
            mime_type=head.content_type,
            bytes=head.size,
            width=_int(meta.get("width")),
            height=_int(meta.get("height")),
            prompt_sha256=item.prompt_sha256,
            started_at=started_at,
            finished_at=_now(),
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

    def _success_row(
        self, item: WorkItem, image: GeneratedImage, key: str, attempts: int, latency: float, started_at: str
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
            finished_at=_now(),
        )

    def _failure_row(self, item: WorkItem, exc: BaseException, *, attempts: int, started_at: str, t0: float) -> ManifestRow:
        message = exc.message if isinstance(exc, BananaflowError) else redact(f"{type(exc).__name__}: {exc}")
        return ManifestRow(
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
            finished_at=_now(),
        )


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
