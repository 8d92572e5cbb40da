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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import datetime

from bananaflow.catalog.references import ReferenceFetcher, ReferencePhotoError
from bananaflow.errors import ClaimHeld, StorageError
from bananaflow.generation.dispatch import Dispatcher
from bananaflow.generation.gate import QualityGate
from bananaflow.generation.lander import ImageLander
from bananaflow.generation.retry import RetryPolicy
from bananaflow.landing.claims import KeyClaims, claim_keys, remove_claims
from bananaflow.landing.finishing import apply_output_preset
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.outcome import ItemOutcome, utc_now
from bananaflow.landing.review_store import find_review_marker, review_marker_key
from bananaflow.landing.spool import Spool
from bananaflow.landing.storage import ImageStore
from bananaflow.landing.verdict import UNCHECKED
from bananaflow.limits.admission import Admission, endpoint_label
from bananaflow.limits.controller import RateController
from bananaflow.planning.work import WorkItem
from bananaflow.providers.base import ImageProvider, ImageRequest

log = logging.getLogger("bananaflow.generation.pipeline")

__all__ = ["ItemListener", "ItemProcessor"]

ItemListener = Callable[[ManifestRow], None]


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
        quality: QualityGate | None = None,
        retry_rejected: bool = False,
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
        #: the quality gate (``bananaflow.generation.gate``); None: ``--qa off``, today's preset QA only
        self.quality = quality
        #: True: an image an earlier run left for review or a person rejected is made again
        self.retry_rejected = retry_rejected
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
                failure = task.exception() if task.done() and not task.cancelled() else None
                if failure is not None:
                    raise failure
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def process(self, item: WorkItem) -> ManifestRow:
        """The item's manifest row, built from its outcome; never raises."""
        started_at, t0 = utc_now(), time.monotonic()
        try:
            outcome = await self.outcome(item, started_at, t0)
        except Exception as exc:  # a bug must cost one item, not the run
            log.exception("unexpected error on row %s (sku %s)", item.row_number, item.sku)
            outcome = ItemOutcome.failure(exc, started_at=started_at, t0=t0)
        row = ManifestRow.from_outcome(item, outcome, run_id=self.run_id)
        for listener in self.listeners:
            try:
                listener(row)
            except Exception:  # progress display must never fail an item
                log.debug("progress listener failed", exc_info=True)
        return row

    async def outcome(self, item: WorkItem, started_at: datetime, t0: float) -> ItemOutcome:
        """What happens to ``item``: found stored or spooled, blocked before, left to another
        run's claim, or generated and landed."""
        if self.spool is not None and (spooled := self.spool.find(item.key_stem)):
            return await self.lander.upload_spooled(item, spooled, started_at, t0)
        # one LIST answers "made already?", "blocked by an earlier run?" and "claims left over?"
        existing, sidecars = await asyncio.to_thread(self.store.find_with_sidecars, item.key_stem)
        if existing is not None:
            if self.claims is not None and (leftovers := claim_keys(item.key_stem, sidecars)):
                # an interrupted run uploaded it but could not drop its claim: the image is safe
                await asyncio.to_thread(remove_claims, self.store, item.key_stem, leftovers)
            return await self.lander.read_existing(item, existing, started_at, t0)
        if not self.retry_blocked and (marker := await self.lander.standing_block(item, sidecars)):
            return self.lander.remembered_block(marker, started_at, t0)
        if self.quality is not None and find_review_marker(item.key_stem, sidecars):
            kept = await self.lander.kept_for_review(item, started_at, t0)
            if kept is not None:
                review, earlier = kept
                if review.status == UNCHECKED:  # paid for, never judged: judge it, make nothing
                    kept_keys = (review.key, *review.derivatives.values())
                    return await self._claimed(item, started_at, t0,
                                               lambda: self._judge_kept(item, earlier, started_at, t0, kept_keys))
                if not self.retry_rejected or review.run_id == self.run_id:
                    return earlier
        return await self._claimed(item, started_at, t0, lambda: self._generate(item, started_at, t0))

    async def _claimed(
        self, item: WorkItem, started_at: datetime, t0: float, work: Callable[[], Awaitable[ItemOutcome]]
    ) -> ItemOutcome:
        """``work`` (make the image, or judge one an earlier run kept) under the item's claim,
        so two runs at once never pay for the same item twice."""
        if self.claims is None:
            return await work()
        claimed = await self.claims.claim(
            item.key_stem, lambda: self.store.find_existing(item.key_stem), wait_s=self.claims.wait_s
        )
        if isinstance(claimed, str):  # made by another run, before or while we claimed
            return await self.lander.read_existing(item, claimed, started_at, t0)
        if not claimed:
            held = ClaimHeld(f"another run is still making this image (claim on {item.key_stem}); run again later")
            return ItemOutcome.failure(held, started_at=started_at, t0=t0)
        try:  # held, and still missing after the claim (``claim`` looked again)
            return await work()
        finally:
            await asyncio.to_thread(self.claims.release, item.key_stem)

    async def _judge_kept(
        self, item: WorkItem, kept: ItemOutcome, started_at: datetime, t0: float, kept_keys: tuple[str, ...] = ()
    ) -> ItemOutcome:
        """An image an earlier run paid for and could not judge: judged now, never made again.
        Once it passed and is under the item's own key, its copy under ``review/`` goes."""
        assert self.quality is not None
        try:
            references = await self.references.for_item(item, self.store) if _wants_references(item) else ()
        except ReferencePhotoError as exc:
            return ItemOutcome.failure(exc, started_at=started_at, t0=t0)
        outcome, finished = await self.quality.judge_kept(item, kept, references)
        outcome = replace(outcome, latency_s=round(time.monotonic() - t0, 3))
        landed = await self.lander.land(item, outcome, finished)
        if landed.status == "succeeded":
            await asyncio.to_thread(_forget_review, self.store, item.key_stem, kept_keys)
        return landed

    async def _generate(self, item: WorkItem, started_at: datetime, t0: float) -> ItemOutcome:
        if item.output_preset and self.quality is None:  # a retried chunk must not pay again for this run's QA failure
            earlier = await self.lander.qa_failure_of_this_run(item, started_at, t0)
            if earlier is not None:
                return earlier
        try:
            references = await self.references.for_item(item, self.store) if _wants_references(item) else ()
        except ReferencePhotoError as exc:
            return ItemOutcome.failure(exc, started_at=started_at, t0=t0)
        request = ImageRequest(
            prompt=item.prompt,
            model=item.model,
            aspect_ratio=item.aspect_ratio,
            image_size=item.image_size,
            reference_images=references,
        )

        async def send_request(sent: ImageRequest) -> ItemOutcome:
            # after a per-day 429 the controller parks the model: the rest is deferred unsent
            return await self.dispatcher.generate(sent, item.variant, started_at=started_at, t0=t0)

        async def send() -> ItemOutcome:
            return await send_request(request)

        outcome = await send()
        if outcome.image is None:  # provider errors, a parked quota, the budget
            if (blocked := outcome.blocked) is not None:
                await self.lander.remember_block(item, blocked, started_at)
            return outcome
        # paid for: on disk first (an output preset may still move it to another key, so its
        # items are journaled once that key is known, by ``land``)
        journal = None if item.output_preset else await self.lander.journal_answer(item, outcome,
                                                                                     gated=self.quality is not None)
        finished = None
        if self.quality is not None:  # free checks, the judge, regenerations with the reasons
            outcome, finished = await self.quality.check(
                item, outcome, request, send_request, context=f"row {item.row_number} (sku {item.sku})"
            )
        elif item.output_preset:
            regenerate = send if item.regenerate_on_qa_failure else None
            outcome, finished = await apply_output_preset(
                item.output_preset, outcome, regenerate, context=f"row {item.row_number} (sku {item.sku})"
            )
        first_sent = outcome.first_sent_at if outcome.first_sent_at is not None else t0
        outcome = replace(outcome, latency_s=round(time.monotonic() - first_sent, 3))  # from the first request
        if self.retry_blocked:  # made after all: the old block no longer stands
            await self.lander.forget_block(item)
        landed = await self.lander.land(item, outcome, finished, journal=journal)
        if self.quality is not None and self.retry_rejected and landed.status == "succeeded":
            await asyncio.to_thread(_forget_review, self.store, item.key_stem)  # made again and passed
        return landed


def _forget_review(store: ImageStore, stem: str, kept_keys: tuple[str, ...] = ()) -> None:
    """The item's image passed after all: its review marker no longer stands, nor the copies
    kept under ``review/`` (a store that cannot delete keeps them; the image under the item's
    own key is found first anyway)."""
    delete = getattr(store, "delete", None)
    if delete is None:
        return
    for key in (review_marker_key(stem), *kept_keys):
        try:
            delete(key)
        except StorageError as exc:
            log.warning("could not remove %s of %s: %s", key, stem, exc.message)


def _wants_references(item: WorkItem) -> bool:
    return bool(item.reference_links or item.group_reference_stem)
