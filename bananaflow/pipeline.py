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

from bananaflow.errors import (
    BananaflowError,
    ProviderError,
    RateLimited,
    StorageError,
    error_status,
)
from bananaflow.finishing import (
    QAFailed,
    apply_output_preset,
    derivative_keys_from_names,
    derivative_names,
    keys_json,
    qa_failed_key,
    qa_failed_stem,
    upload_derivatives,
)
from bananaflow.keys import ext_for_mime
from bananaflow.manifest import ManifestRow
from bananaflow.providers.base import GeneratedImage, ImageProvider, ImageRequest
from bananaflow.ratelimit import RateController
from bananaflow.references import ReferenceFetcher, ReferencePhotoError
from bananaflow.retry import RetryPolicy, call_with_retries
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
        references: ReferenceFetcher | None = None,
    ) -> None:
        self.provider = provider
        self.store = store
        self.controller = controller
        self.policy = policy
        self.run_id = run_id
        self.spool = spool
        self.listeners = list(listeners)
        self.references = references or ReferenceFetcher()

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
        if item.output_preset:  # a retried chunk must not pay again for this run's QA failure
            earlier = await self._qa_failure_of_this_run(item, started_at, t0)
            if earlier is not None:
                return earlier

        try:
            references = await self.references.for_item(item, self.store) if _wants_references(item) else ()
        except ReferencePhotoError as exc:
            return self._failure_row(item, exc, attempts=0, started_at=started_at, t0=t0)
        request = ImageRequest(
            prompt=item.prompt,
            model=item.model,
            aspect_ratio=item.aspect_ratio,
            image_size=item.image_size,
            reference_images=references,
        )

        admitted_at: list[float] = []  # latency counts from the first request, not the queue

        async def attempt() -> GeneratedImage:
            async with self.controller.slot():
                if not admitted_at:
                    admitted_at.append(time.monotonic())
                try:
                    return await self.provider.generate(request)
                except RateLimited as exc:
                    self.controller.cooldown(exc.retry_after)
                    raise

        try:
            image, attempts = await call_with_retries(attempt, self.policy)
        except ProviderError as exc:
            return self._failure_row(item, exc, attempts=getattr(exc, "attempts", 1), started_at=started_at, t0=t0)
        finished = None
        if item.output_preset:
            regenerate = (lambda: call_with_retries(attempt, self.policy)) if item.regenerate_on_qa_failure else None
            image, attempts, finished = await apply_output_preset(
                item.output_preset, image, attempts, regenerate, context=f"row {item.row_number} (sku {item.sku})"
            )
        latency = time.monotonic() - (admitted_at[0] if admitted_at else t0)
        key = f"{item.key_stem}.{ext_for_mime(image.mime_type)}"
        metadata = self._metadata(item, image, attempts, latency)
        row = self._success_row(item, image, key, attempts, latency, started_at)
        if finished is not None:
            row.qa = finished.report.to_json()
            if not finished.report.passed:
                key = qa_failed_key(item.key_stem, ext_for_mime(image.mime_type))
                failure = QAFailed(finished.report.describe())
                row.status, row.error_class, row.error_message = failure.status, "QAFailed", failure.message[:500]
                row.key, row.uri = key, self.store.uri(key)
                metadata[META_PREFIX + "qa-problems"] = row.error_message[:300]
            else:
                metadata[META_PREFIX + "derivatives"] = derivative_names(finished)
        try:
            if finished is not None and finished.report.passed:
                row.derivatives = keys_json(
                    await asyncio.to_thread(upload_derivatives, self.store, item.key_stem, finished, metadata)
                )
            await asyncio.to_thread(self.store.put_image, key, image.data, image.mime_type, metadata)
        except StorageError as exc:
            row.derivatives = ""
            metadata.pop(META_PREFIX + "derivatives", None)
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

    async def _qa_failure_of_this_run(self, item: WorkItem, started_at: str, t0: float) -> ManifestRow | None:
        key = await asyncio.to_thread(self.store.find_existing, qa_failed_stem(item.key_stem))
        if key is None:
            return None
        row = await self._row_for_existing(item, key, started_at, t0)
        if row.status != "succeeded":  # "succeeded" here means: stored by this same run
            return None
        head = await asyncio.to_thread(self.store.head, key)
        row.status, row.error_class = "qa_failed", "QAFailed"
        row.error_message = head.metadata.get(META_PREFIX + "qa-problems", "QA failed earlier in this run")
        row.derivatives = ""
        return row

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


def _wants_references(item: WorkItem) -> bool:
    return bool(getattr(item, "reference_links", ()) or getattr(item, "group_reference_stem", ""))


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
