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
from collections.abc import AsyncIterator, Callable, Iterable

from bananaflow.catalog.references import ReferenceFetcher, ReferencePhotoError
from bananaflow.errors import BananaflowError, ClaimHeld, ContentBlocked
from bananaflow.generation.dispatch import Dispatcher
from bananaflow.generation.lander import META_PREFIX, ImageLander, now_iso
from bananaflow.generation.retry import RetryPolicy
from bananaflow.landing.claims import KeyClaims, claim_keys, remove_claims
from bananaflow.landing.finishing import apply_output_preset
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.spool import Spool
from bananaflow.landing.storage import ImageStore
from bananaflow.limits.admission import Admission, endpoint_label
from bananaflow.limits.controller import RateController
from bananaflow.planning.work import WorkItem
from bananaflow.providers.base import GeneratedImage, ImageProvider, ImageRequest

log = logging.getLogger("bananaflow.generation.pipeline")

__all__ = ["META_PREFIX", "ItemListener", "ItemProcessor"]

ItemListener = Callable[[ManifestRow], None]
_now = now_iso


class ItemProcessor:
    """Processes work items against one provider and one store, admitted by one run's
    ``Admission`` (or, for a single model without fallback, one ``RateController``)."""

    def __init__(
        self,
        provider: ImageProvider,
        store: ImageStore,
        gate: RateController | Admission,
        policy: RetryPolicy,
        *,
        run_id: str,
        spool: Spool | None = None,
        listeners: Iterable[ItemListener] = (),
        references: ReferenceFetcher | None = None,
        claims: KeyClaims | None = None,
        fallback_providers: Iterable[ImageProvider] = (),
        retry_blocked: bool = False,
    ) -> None:
        self.provider = provider
        self.store = store
        self.policy = policy
        self.run_id = run_id
        self.spool = spool
        self.listeners = list(listeners)
        self.lander = ImageLander(store, run_id=run_id, spool=spool, mode="realtime")
        self.references = references or ReferenceFetcher()
        self.claims = claims
        #: False: an item an earlier run saw blocked (same key, so same prompt) is not sent again
        self.retry_blocked = retry_blocked
        # Admission (limits, breakers, fallback, budget) lives in bananaflow.generation.dispatch/admission.
        providers = {endpoint_label(p.name, p.base_url): p for p in (provider, *fallback_providers)}
        admission = gate if isinstance(gate, Admission) else Admission.for_controller(gate)
        self.dispatcher = Dispatcher(providers, admission, policy)

    async def process_all(self, items: Iterable[WorkItem]) -> list[ManifestRow]:
        """All items concurrently; the controller, not this gather, bounds the requests."""
        return list(await asyncio.gather(*(self.process(item) for item in items)))

    async def process_stream(self, items: Iterable[WorkItem], *, window: int = 100) -> AsyncIterator[ManifestRow]:
        """Rows as items finish (completion order), with at most ``window`` items in progress.

        For long runs in one place: ``process_all`` starts a task per item up front, so
        10,000 items are 10,000 tasks (and their coroutines) alive until the last one ends;
        here ``window`` workers take the next item when they finish one, and what stays
        behind per item is only the row the caller keeps. The controller, not the window,
        still decides when each request goes: make the window a few times the in-flight cap.
        Leaving the loop early (or being cancelled) cancels the items still in progress.
        """
        if window < 1:
            raise ValueError("window must be at least 1")
        source = iter(items)
        rows: asyncio.Queue[ManifestRow | None] = asyncio.Queue()

        async def worker() -> None:
            try:
                for item in source:  # one iterator shared by all workers: each item is taken once
                    rows.put_nowait(await self.process(item))
            finally:
                rows.put_nowait(None)  # this worker is done

        workers = [asyncio.ensure_future(worker()) for _ in range(window)]
        try:
            running = len(workers)
            while running:
                row = await rows.get()
                if row is None:
                    running -= 1
                else:
                    yield row
            for task in workers:  # ``process`` never raises, but the items iterable may
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def process(self, item: WorkItem) -> ManifestRow:
        started_at, t0 = _now(), time.monotonic()
        try:
            row = await self._process(item, started_at, t0)
        except Exception as exc:  # a bug must cost one item, not the run
            log.exception("unexpected error on row %s (sku %s)", item.row_number, item.sku)
            row = self.lander.failure_row(item, exc, attempts=getattr(exc, "attempts", 0), started_at=started_at, t0=t0)
        for listener in self.listeners:
            try:
                listener(row)
            except Exception:  # progress display must never fail an item
                log.debug("progress listener failed", exc_info=True)
        return row

    async def _process(self, item: WorkItem, started_at: str, t0: float) -> ManifestRow:
        if self.spool is not None and (spooled := self.spool.find(item.key_stem)):
            return await self.lander.spooled_row(item, spooled, started_at, t0)
        # one LIST answers "made already?", "blocked by an earlier run?" and "claims left over?"
        existing, sidecars = await asyncio.to_thread(self.store.find_with_sidecars, item.key_stem)
        if existing is not None:
            if self.claims is not None and (leftovers := claim_keys(item.key_stem, sidecars)):
                # an interrupted run uploaded it but could not drop its claim: the image is safe
                await asyncio.to_thread(remove_claims, self.store, item.key_stem, leftovers)
            return await self.lander.existing_row(item, existing, started_at, t0)
        if not self.retry_blocked and (marker := await self.lander.standing_block(item, sidecars)):
            return self.lander.remembered_block_row(item, marker, started_at, t0)
        if self.claims is None:
            return await self._generate(item, started_at, t0)
        claimed = await self.claims.claim(
            item.key_stem, lambda: self.store.find_existing(item.key_stem), wait_s=self.claims.wait_s
        )
        if isinstance(claimed, str):  # made by another run, before or while we claimed
            return await self.lander.existing_row(item, claimed, started_at, t0)
        if not claimed:
            held = ClaimHeld(f"another run is still making this image (claim on {item.key_stem}); run again later")
            return self.lander.failure_row(item, held, attempts=0, started_at=started_at, t0=t0)
        try:  # held, and still missing after the claim (``claim`` looked again)
            return await self._generate(item, started_at, t0)
        finally:
            await asyncio.to_thread(self.claims.release, item.key_stem)

    async def _generate(self, item: WorkItem, started_at: str, t0: float) -> ManifestRow:
        if item.output_preset:  # a retried chunk must not pay again for this run's QA failure
            earlier = await self.lander.qa_failure_of_this_run(item, started_at, t0)
            if earlier is not None:
                return earlier

        try:
            references = await self.references.for_item(item, self.store) if _wants_references(item) else ()
        except ReferencePhotoError as exc:
            return self.lander.failure_row(item, exc, attempts=0, started_at=started_at, t0=t0)
        request = ImageRequest(
            prompt=item.prompt,
            model=item.model,
            aspect_ratio=item.aspect_ratio,
            image_size=item.image_size,
            reference_images=references,
        )

        async def send() -> tuple[GeneratedImage, int]:
            # after a per-day 429 the controller parks the model: the rest is deferred unsent
            dispatched = await self.dispatcher.generate(request, item.variant)
            sent.append(dispatched)
            return dispatched.image, dispatched.attempts

        sent: list = []  # every dispatch of this item: the first one's send time, the last one's route
        try:
            image, attempts = await send()
        except BananaflowError as exc:  # provider errors, a parked quota, the budget
            if isinstance(exc, ContentBlocked):
                await self.lander.remember_block(item, exc, started_at)
            return self.lander.failure_row(item, exc, attempts=getattr(exc, "attempts", 1), started_at=started_at, t0=t0)
        finished = None
        if item.output_preset:
            regenerate = send if item.regenerate_on_qa_failure else None
            image, attempts, finished = await apply_output_preset(
                item.output_preset, image, attempts, regenerate, context=f"row {item.row_number} (sku {item.sku})"
            )
        latency = time.monotonic() - sent[0].first_sent_at  # from the first request, not the queue
        if self.retry_blocked:  # made after all: the old block no longer stands
            await self.lander.forget_block(item)
        return await self.lander.land(
            item, image, attempts=attempts, latency_s=latency, started_at=started_at, finished=finished,
            endpoint=sent[-1].route.endpoint,
        )


def _wants_references(item: WorkItem) -> bool:
    return bool(item.reference_links or item.group_reference_stem)
