"""Landing a paid-for image: upload it with its metadata, or keep it in the spool.

Realtime calls (``bananaflow.generation.pipeline``) and Batch-mode results (``bananaflow.batch``) end
the same way once they hold a verified image, so that ending lives here, once: the object
key is the item's fixed ``key_stem`` plus the extension of the format that came back, the
object carries ``bananaflow-*`` metadata (``bananaflow.landing.object_meta``) a re-run reads
back, and an upload that fails puts the bytes in the spool rather than dropping them.

The lander only stores and reads back: it takes and returns ``ItemOutcome`` values, and the
manifest row is built from the outcome elsewhere (``ManifestRow.from_outcome``).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from bananaflow.errors import ContentBlocked, StorageError
from bananaflow.landing.blocked import BlockedMarker, blocked_key, forget_block, read_block, remember_block
from bananaflow.landing.finishing import (
    QAFailed,
    derivative_keys_from_names,
    derivative_names,
    qa_failed_key,
    qa_failed_stem,
    upload_derivatives,
)
from bananaflow.landing.keys import ext_for_mime
from bananaflow.landing.object_meta import ObjectMeta
from bananaflow.landing.outcome import Charge, ItemOutcome, StoredImage, utc_now
from bananaflow.landing.output_presets import Finished
from bananaflow.landing.review_store import (
    REVIEW_CONTENT_TYPE,
    ReviewMarker,
    read_review_marker,
    review_marker_key,
    review_stem,
    write_review_marker,
)
from bananaflow.landing.spool import Spool
from bananaflow.landing.storage import ImageStore
from bananaflow.landing.verdict import NEEDS_REVIEW, REJECTED, UNCHECKED
from bananaflow.planning.work import WorkItem
from bananaflow.providers.base import GeneratedImage, Usage
from bananaflow.secrets import redact

__all__ = ["ImageLander"]

log = logging.getLogger("bananaflow.generation.lander")

#: Threads that only write answers to the spool. An answer handed to the run's I/O threads
#: waits behind every S3 look-up, claim and upload queued before it (seconds at the start of
#: a run, while the next items are looked up), and a ``kill -9`` meanwhile loses what was
#: paid for; here nothing else queues, so an answer is on disk within milliseconds.
_JOURNAL_THREADS = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="bananaflow-journal")


class ImageLander:
    """Stores images of one run in one store; ``mode`` ("realtime" or "batch") is written
    into every outcome and object it makes."""

    def __init__(self, store: ImageStore, *, run_id: str, spool: Spool | None = None, mode: str = "realtime") -> None:
        self.store = store
        self.run_id = run_id
        self.spool = spool
        self.mode = mode
        #: the longest an answer waited between the provider and the spool in this run (seconds)
        self.slowest_journal_s = 0.0

    async def journal_answer(self, item: WorkItem, outcome: ItemOutcome, *, gated: bool = False) -> Path | None:
        """Put a just-received answer in the spool before anything else is done with it
        (finishing, upload), on threads of its own; ``land`` then uploads it and drops the
        journal. None without a spool or when the spool refused it (``land`` retries).

        ``gated`` (the quality gate is on): the answer is not checked yet, so it is kept under
        ``review/`` with an ``unchecked`` marker to upload after it: a crash before the gate
        decides leaves an image the next run judges without making it again, never one
        published unchecked under the item's key."""
        image = outcome.image
        if self.spool is None or image is None:
            return None
        extension = ext_for_mime(image.mime_type)
        key = f"{item.key_stem}.{extension}"
        also = None
        if gated:
            key = f"{review_stem(item.key_stem, getattr(self.store, 'prefix', ''))}.{extension}"
            marker = ReviewMarker(status=UNCHECKED, key=key, mime_type=image.mime_type, run_id=self.run_id,
                                  at=utc_now().isoformat(timespec="milliseconds"), prompt_sha256=item.prompt_sha256,
                                  model=outcome.model or item.model, cost_usd=outcome.cost_usd, attempts=outcome.attempts,
                                  reasons="not judged yet: the run stopped before its quality gate decided")
            also = (review_marker_key(item.key_stem), marker.to_json(), REVIEW_CONTENT_TYPE)
        metadata = self._meta(item, outcome, image).encode()
        received = time.monotonic()
        path = await asyncio.get_running_loop().run_in_executor(_JOURNAL_THREADS, self._journal, key, image, metadata,
                                                                also)
        waited = time.monotonic() - received
        if waited > self.slowest_journal_s:
            self.slowest_journal_s = waited
            log.debug("answer for %s on disk %.3f s after it arrived", key, waited)
        return path

    def _drop_early_journal(self, journal: Path | None, kept: Path | None) -> None:
        """The answer's first journal entry, once the image it became is safe elsewhere."""
        if journal is not None and journal != kept and self.spool is not None:
            self.spool.discard_entry(journal)

    async def land(
        self, item: WorkItem, outcome: ItemOutcome, finished: Finished | None = None, *, journal: Path | None = None
    ) -> ItemOutcome:
        """Upload the outcome's image under the item's key; a failed upload spools the bytes.

        With an output preset (``finished``), an image that passed QA is uploaded with its
        derivatives; one that failed is kept under a ``qa-failed`` key (it was paid for) and
        the outcome says ``qa_failed`` with the measured numbers. ``journal``: the answer's
        spool entry ``journal_answer`` wrote under the same key (none is written again).
        """
        image = outcome.image
        if image is None:
            raise ValueError("land() needs an outcome that holds an image")
        early = journal  # the answer as it arrived (under review/ when gated): dropped once the result is safe
        if outcome.status in (NEEDS_REVIEW, UNCHECKED):
            landed = await self.land_for_review(item, outcome, finished)
            self._drop_early_journal(early, self._spool_path(landed))
            return landed
        extension = ext_for_mime(image.mime_type)
        key = f"{item.key_stem}.{extension}"
        if journal is not None and self.spool is not None and journal != self.spool.entry_path(key):
            journal = None  # not the bytes (or key) that are landed here: journal them anew
        meta = self._meta(item, outcome, image)
        if finished is not None:
            outcome = replace(outcome, qa=finished.report.to_json())
            if not finished.report.passed:
                key = qa_failed_key(item.key_stem, extension)
                outcome = outcome.with_error(QAFailed(finished.report.describe()))
                meta = replace(meta, qa_problems=outcome.error_message)
            else:
                meta = replace(meta, derivatives=derivative_names(finished))
        metadata = meta.encode()
        journal, derivatives, error = await asyncio.to_thread(self._store_paid, item, key, image, metadata, finished,
                                                              journal)
        if error is not None:
            metadata = replace(meta, derivatives="").encode()
            spooled = self._spool_or_fail(outcome, key, image, metadata, error, journal)
            if spooled.status == "spooled":
                self._drop_early_journal(early, journal)
            return spooled
        self._drop_early_journal(early, journal)
        return outcome.landed(self._stored(key, image, derivatives or {}))

    async def land_for_review(self, item: WorkItem, outcome: ItemOutcome, finished: Finished | None) -> ItemOutcome:
        """An image the gate did not pass (``needs_review``, ``unchecked``): paid for, so kept,
        but under ``review/`` with its derivatives (the thumbnail a reviewer sees), and a
        marker beside the item's key that tells the next run (``bananaflow.landing.review_store``)."""
        image = outcome.image
        assert image is not None
        extension = ext_for_mime(image.mime_type)
        prefix = getattr(self.store, "prefix", "")
        stem = review_stem(item.key_stem, prefix)
        key = f"{stem}.{extension}"
        meta = replace(self._meta(item, outcome, image), qa_problems=outcome.error_message)
        if finished is not None:
            meta = replace(meta, derivatives=derivative_names(finished))
        metadata = meta.encode()

        marker = ReviewMarker(
            status=outcome.status, key=key, mime_type=image.mime_type, run_id=self.run_id,
            at=utc_now().isoformat(timespec="milliseconds"), prompt_sha256=item.prompt_sha256,
            model=outcome.model or item.model, cost_usd=outcome.cost_usd, attempts=outcome.attempts,
            qa_attempts=outcome.qa_attempts, reasons=outcome.qa_reasons, verdicts=outcome.verdicts,
        )

        def store() -> tuple[Path | None, dict[str, str] | None, StorageError | None]:
            # spooled with its marker: if the upload fails, the next run's drain restores both
            journal = self._journal(key, image, metadata,
                                    (review_marker_key(item.key_stem), marker.to_json(), REVIEW_CONTENT_TYPE))
            try:
                derivatives = upload_derivatives(self.store, stem, finished, metadata) if finished is not None else {}
                self.store.put_image(key, image.data, image.mime_type, metadata)
                write_review_marker(self.store, item.key_stem, replace(marker, derivatives=derivatives))
            except StorageError as exc:
                return journal, None, exc
            if journal is not None and self.spool is not None:
                self.spool.discard(key)
            return journal, derivatives, None

        journal, derivatives, error = await asyncio.to_thread(store)
        if error is not None:  # spooled images are uploaded to this key by the next run; judged then
            return self._spool_or_fail(outcome, key, image, replace(meta, derivatives="").encode(), error, journal)
        landed = outcome.landed(self._stored(key, image, derivatives or {}))
        return replace(landed, status=outcome.status)

    async def kept_for_review(self, item: WorkItem, started_at: datetime, t0: float) -> tuple[ReviewMarker, ItemOutcome] | None:
        """The image an earlier run kept under ``review/`` for this exact item (its marker
        was listed beside the key), as an outcome that sends nothing: ``needs_review`` or
        ``rejected`` as the marker says, or ``unchecked`` with the image's bytes in hand to
        be judged now. None when the marker cannot be read."""
        marker = await asyncio.to_thread(read_review_marker, self.store, item.key_stem)
        if marker is None:
            return None
        head = await asyncio.to_thread(self.store.head, marker.key)
        meta = ObjectMeta.decode(head.metadata)
        stored = StoredImage(key=marker.key, uri=self.store.uri(marker.key), mime_type=head.content_type,
                             bytes=head.size, width=meta.width or 0, height=meta.height or 0,
                             derivatives=dict(marker.derivatives))
        same_run = meta.run_id == self.run_id
        outcome = ItemOutcome(
            status=marker.status, started_at=started_at, latency_s=round(time.monotonic() - t0, 3),
            model=marker.model or meta.model, stored=stored, verdicts=marker.verdicts, qa_attempts=marker.qa_attempts,
            error_class="ChecksFailed" if marker.status != UNCHECKED else "JudgeUnavailable",
            error_message=_kept_message(marker), mode=self.mode,
            attempts=marker.attempts if same_run else 0,
            recorded_cost_usd=marker.cost_usd if same_run else None,
        )
        if marker.status == UNCHECKED:
            data = await asyncio.to_thread(self.store.get_bytes, marker.key)
            image = GeneratedImage(data=data, mime_type=head.content_type or marker.mime_type,
                                   model=marker.model, usage=Usage(), cost_usd=0.0,
                                   width=meta.width or 0, height=meta.height or 0)
            # an image in hand, as if just made (for nothing): the gate decides its status now
            outcome = replace(outcome, status="succeeded", error_class="", error_message="", image=image, stored=None,
                              recorded_cost_usd=None, attempts=0)
        return marker, outcome

    def _stored(self, key: str, image: GeneratedImage, derivatives: dict[str, str]) -> StoredImage:
        return StoredImage(key=key, uri=self.store.uri(key), mime_type=image.mime_type, bytes=len(image.data),
                           width=image.width, height=image.height, derivatives=derivatives)

    def _meta(self, item: WorkItem, outcome: ItemOutcome, image: GeneratedImage) -> ObjectMeta:
        usage = image.usage
        return ObjectMeta(
            run_id=self.run_id, sku=item.sku, variant=item.variant, row=item.row_number,
            model=outcome.model or image.model or item.model, image_size=item.image_size,
            aspect_ratio=item.aspect_ratio, width=image.width, height=image.height, attempts=outcome.attempts,
            latency_s=outcome.latency_s or 0.0, prompt_tokens=usage.prompt_tokens, image_tokens=usage.image_tokens,
            output_tokens=usage.candidates_tokens + usage.thoughts_tokens, cost_usd=outcome.cost_usd,
            prompt_sha256=item.prompt_sha256, mode=self.mode, batch=outcome.batch_name, endpoint=outcome.endpoint,
        )

    def _store_paid(
        self, item: WorkItem, key: str, image: GeneratedImage, metadata: dict[str, str], finished: Finished | None,
        journal: Path | None = None,
    ) -> tuple[Path | None, dict[str, str] | None, StorageError | None]:
        """Journal, derivatives, upload, then drop the journal, in one trip to a worker thread
        (each trip costs the event loop a hand-off, thousands of times a run). Returns the
        journal, the derivative keys, and the S3 error that stopped the upload, if any."""
        if journal is None:
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

    def _spool_path(self, landed: ItemOutcome) -> Path | None:
        """Where the spool keeps ``landed``'s image, when it was spooled (else None)."""
        if self.spool is None or landed.stored is None or landed.status != "spooled":
            return None
        return self.spool.entry_path(landed.stored.key)

    def _journal(
        self, key: str, image: GeneratedImage, metadata: dict[str, str], also: tuple[str, bytes, str] | None = None
    ) -> Path | None:
        """Write the paid bytes to the spool *before* uploading, so a crash between the
        provider's answer and the upload loses nothing: the next run uploads them."""
        if self.spool is None:
            return None
        try:
            return self.spool.put(key, image.data, image.mime_type, metadata, also=also)
        except OSError as exc:  # full or unwritable: upload straight away, unprotected
            log.warning("could not keep %s in the local spool before upload: %s", key, exc)
            return None

    def _spool_or_fail(
        self,
        outcome: ItemOutcome,
        key: str,
        image: GeneratedImage,
        metadata: dict[str, str],
        exc: StorageError,
        journal: Path | None = None,
    ) -> ItemOutcome:
        """The image is paid for: keep it locally rather than drop it. The outcome keeps the
        key it was meant for; it is not retried in this run (that would pay again)."""
        outcome = replace(outcome, stored=self._stored(key, image, {}))
        if self.spool is None:
            return outcome.with_error(exc, status="failed",
                                      message=f"upload failed and no spool is configured: {exc.message}")
        path = journal
        if path is None:
            try:
                path = self.spool.put(key, image.data, image.mime_type, metadata)
            except OSError as spool_exc:
                return outcome.with_error(exc, status="failed",
                                          message=f"upload failed ({exc.message}) and spooling failed ({spool_exc})")
        message = f"upload failed ({exc.message}); image kept at {path}, uploaded on the next run"
        return replace(outcome.with_error(exc, status="spooled", message=message), image=None)

    async def upload_spooled(self, item: WorkItem, key: str, started_at: datetime, t0: float) -> ItemOutcome:
        """Paid for already (by this run's earlier attempt or a crashed one) and waiting
        locally: upload it now if S3 answers, never generate it again."""
        assert self.spool is not None
        try:
            await asyncio.to_thread(self.spool.upload, key, self.store)
        except StorageError as exc:
            waiting = ItemOutcome.failure(exc, started_at=started_at, t0=t0, mode=self.mode)
            message = f"upload failed ({exc.message}); image kept in the local spool, uploaded on the next run"
            return replace(waiting.with_error(exc, status="spooled", message=message),
                           stored=StoredImage(key=key, uri=self.store.uri(key), mime_type=""))
        return await self.read_existing(item, key, started_at, t0)

    async def read_existing(self, item: WorkItem, key: str, started_at: datetime, t0: float) -> ItemOutcome:
        """An object under this item's key exists. Made by this same run (a retried chunk):
        the success it was, with what it cost. Made earlier: ``skipped_exists``, nothing paid."""
        head = await asyncio.to_thread(self.store.head, key)
        meta = ObjectMeta.decode(head.metadata)
        same_run = meta.run_id == self.run_id
        stored = StoredImage(
            key=key, uri=self.store.uri(key), mime_type=head.content_type, bytes=head.size,
            width=meta.width or 0, height=meta.height or 0,
            derivatives=derivative_keys_from_names(item.key_stem, meta.derivatives),
        )
        outcome = ItemOutcome(
            status="succeeded" if same_run else "skipped_exists", started_at=started_at,
            latency_s=round(time.monotonic() - t0, 3), model=meta.model, endpoint=meta.endpoint, stored=stored,
            mode=(meta.mode or "realtime") if same_run else self.mode, batch_name=meta.batch if same_run else "",
        )
        if not same_run:
            return outcome
        usage = Usage(prompt_tokens=meta.prompt_tokens or 0, image_tokens=meta.image_tokens or 0,
                      candidates_tokens=meta.output_tokens or 0)
        return replace(outcome, latency_s=meta.latency_s or 0.0, attempts=meta.attempts or 0,
                       recorded_usage=usage, recorded_cost_usd=meta.cost_usd or 0.0)

    async def qa_failure_of_this_run(self, item: WorkItem, started_at: datetime, t0: float) -> ItemOutcome | None:
        """This run already paid for an image of ``item`` that failed QA (a retried chunk):
        report that failure again instead of paying a third time."""
        key = await asyncio.to_thread(self.store.find_existing, qa_failed_stem(item.key_stem))
        if key is None:
            return None
        outcome = await self.read_existing(item, key, started_at, t0)
        if outcome.status != "succeeded":  # "succeeded" here means: stored by this same run
            return None
        head = await asyncio.to_thread(self.store.head, key)
        problems = ObjectMeta.decode(head.metadata).qa_problems or "QA failed earlier in this run"
        assert outcome.stored is not None
        return replace(outcome.with_error(QAFailed(problems)), stored=replace(outcome.stored, derivatives={}))

    async def standing_block(self, item: WorkItem, sidecars: list[str]) -> BlockedMarker | None:
        """The block an earlier run remembered for this same prompt, when ``sidecars`` (one
        look at the item's keys) shows a marker; None when there is none or the prompt changed."""
        if blocked_key(item.key_stem) not in sidecars:
            return None
        marker = await asyncio.to_thread(read_block, self.store, item.key_stem)
        return marker if marker.prompt_sha256 in ("", item.prompt_sha256) else None

    async def remember_block(self, item: WorkItem, exc: ContentBlocked, started_at: datetime) -> None:
        """Keep the refusal beside the item's key, so the next run does not pay for it again."""
        marker = BlockedMarker(
            reason=exc.reason or "blocked", message=exc.message, run_id=self.run_id,
            at=started_at.isoformat(timespec="milliseconds"), prompt_sha256=item.prompt_sha256,
            model=exc.model or item.model,
        )
        await asyncio.to_thread(_quietly, remember_block, self.store, item.key_stem, marker)

    async def forget_block(self, item: WorkItem) -> None:
        """The image was made after all (``--retry-blocked``): the old block no longer stands."""
        await asyncio.to_thread(_quietly, forget_block, self.store, item.key_stem)

    def remembered_block(self, marker: BlockedMarker, started_at: datetime, t0: float) -> ItemOutcome:
        """An earlier run was refused this same prompt: ``blocked`` again, nothing sent."""
        when = marker.at[:16] or "an earlier run"
        note = (
            f"not sent: blocked by the provider on {when} (run {marker.run_id or '?'}): "
            f"{marker.message or marker.reason}; --retry-blocked sends it again"
        )
        blocked = ContentBlocked(redact(note), reason=marker.reason)
        nothing_sent = Charge("nothing: blocked by an earlier run", 0.0)
        return ItemOutcome.failure(blocked, started_at=started_at, t0=t0, mode=self.mode, charges=(nothing_sent,))


def _kept_message(marker: ReviewMarker) -> str:
    when = marker.at[:16] or "an earlier run"
    if marker.status == UNCHECKED:
        return f"made on {when} (run {marker.run_id or '?'}) but not judged yet"
    verb = "rejected by a person" if marker.status == REJECTED else "left for review"
    reasons = f": {marker.reasons}" if marker.reasons else ""
    return (f"not sent: {verb} on {when} (run {marker.run_id or '?'}){reasons}; the same row and prompt would fail "
            "the same way (--retry-rejected makes it again)")[:500]


def _quietly(action: Callable[..., None], *args: object) -> None:
    """A marker is a saving, not a duty: S3 failing to keep one must not fail the item."""
    try:
        action(*args)
    except StorageError as exc:
        log.warning("could not update the blocked marker: %s", exc.message)
