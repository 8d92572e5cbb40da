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
from typing import Callable, Iterable

from bananaflow.admission import Admission, endpoint_label
from bananaflow.dispatch import Dispatcher
from bananaflow.errors import (
    BananaflowError,
    StorageError,
    error_status,
)
from bananaflow.keys import ext_for_mime
from bananaflow.manifest import ManifestRow
from bananaflow.providers.base import GeneratedImage, ImageProvider, ImageRequest
from bananaflow.ratelimit import RateController
from bananaflow.retry import RetryPolicy
from bananaflow.secrets import redact
from bananaflow.spool import Spool
from bananaflow.storage import ImageStore
from bananaflow.work import WorkItem

log = logging.getLogger("bananaflow.pipeline")

#: Object metadata bananaflow writes, read back to recognise its own objects on a re-run.
META_PREFIX = "bananaflow-"

ItemListener = Callable[[ManifestRow], None]


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
        admission: Admission | None = None,
        fallback_providers: Iterable[ImageProvider] = (),
    ) -> None:
        self.provider = provider
        self.store = store
        self.controller = controller
        self.policy = policy
        self.run_id = run_id
        self.spool = spool
        self.listeners = list(listeners)
        # Admission (limits, breakers, fallback, budget) lives in bananaflow.dispatch/admission.
        providers = {endpoint_label(p.name, p.base_url): p for p in (provider, *fallback_providers)}
        self.dispatcher = Dispatcher(providers, admission or Admission.for_controller(controller), policy)

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
        existing = await asyncio.to_thread(self.store.find_existing, item.key_stem)
        if existing is not None:
            return await self._row_for_existing(item, existing, started_at, t0)

        request = ImageRequest(
            prompt=item.prompt, model=item.model, aspect_ratio=item.aspect_ratio, image_size=item.image_size
        )

        try:
            sent = await self.dispatcher.generate(request, item.variant)
        except BananaflowError as exc:  # provider errors, a parked quota, the budget
            return self._failure_row(item, exc, attempts=getattr(exc, "attempts", 1), started_at=started_at, t0=t0)
        image, attempts = sent.image, sent.attempts
        latency = time.monotonic() - sent.first_sent_at  # from the first request, not the queue
        key = f"{item.key_stem}.{ext_for_mime(image.mime_type)}"
        metadata = self._metadata(item, image, attempts, latency)
        row = self._success_row(item, image, key, attempts, latency, started_at)
        row.model, row.endpoint = image.model or sent.route.model, sent.route.endpoint
        metadata[META_PREFIX + "endpoint"] = sent.route.endpoint
        try:
            await asyncio.to_thread(self.store.put_image, key, image.data, image.mime_type, metadata)
        except StorageError as exc:
            return self._spool_or_fail(row, key, image, metadata, exc)
        return row

    def _spool_or_fail(
        self, row: ManifestRow, key: str, image: GeneratedImage, metadata: dict[str, str], exc: StorageError
    ) -> ManifestRow:
        """The image is paid for: keep it locally rather than drop it."""
        row.status = "failed"
        row.error_class = type(exc).__name__
        if self.spool is None:
            row.error_message = f"upload failed and no spool is configured: {exc.message}"
            return row
        try:
            path = self.spool.put(key, image.data, image.mime_type, metadata)
        except OSError as spool_exc:
            row.error_message = f"upload failed ({exc.message}) and spooling failed ({spool_exc})"
            return row
        row.status = "spooled"
        row.error_message = f"upload failed ({exc.message}); image kept at {path}, uploaded on the next run"
        return row

    def _metadata(self, item: WorkItem, image: GeneratedImage, attempts: int, latency: float) -> dict[str, str]:
        values = {
            "run-id": self.run_id,
            "sku": item.sku,
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
            endpoint=meta.get("endpoint", ""),
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
