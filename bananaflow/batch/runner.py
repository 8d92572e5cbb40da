"""A batch run from work items to manifest rows: plan, submit, wait, collect.

Each step is one call a Prefect task can make (``tasks/batch.py``), and each is safe to
repeat after a crash: ``plan`` finds images already stored (skipped, nothing paid twice)
and batches recorded in the ledger (resumed, never created again); ``submit`` records the
batch before and after creating it; ``wait`` only reads; ``collect`` skips images that a
crashed collection already stored. Every result line goes through the same parser as a
realtime answer and the same ``ImageLander`` as a realtime image.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, retry_if_result, stop_after_delay
from tenacity.wait import wait_exponential_jitter

from bananaflow.batch.api import BatchAPI, BatchStatus
from bananaflow.batch.jsonl import ResultLine, image_request
from bananaflow.batch.ledger import BatchJob, BatchLedger, job_id_for
from bananaflow.errors import (
    BadResponse,
    BatchNotCompleted,
    BudgetExhausted,
    ConfigurationError,
    ContentBlocked,
    Overloaded,
    ProviderError,
    RateLimited,
    ServerError,
    is_retryable,
)
from bananaflow.generation.gate import QualityGate
from bananaflow.generation.lander import ImageLander
from bananaflow.generation.retry import RetryPolicy, call_with_retries
from bananaflow.landing.finishing import apply_output_preset
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.outcome import Charge, ItemOutcome, billed_charge, utc_now
from bananaflow.landing.review_store import find_review_marker
from bananaflow.landing.storage import ImageStore
from bananaflow.landing.verdict import UNCHECKED
from bananaflow.limits.budget import Budget, batch_worst_case_cost_usd
from bananaflow.planning.batch_sizing import BatchLimits, split_into_batches
from bananaflow.planning.work import WorkItem
from bananaflow.providers.base import ImageRequest
from bananaflow.providers.classify import classify_status
from bananaflow.providers.gemini import image_from_response
from bananaflow.providers.models import get_model

log = logging.getLogger("bananaflow.batch")

RowListener = Callable[[ManifestRow], None]
_LOOKUPS_AT_ONCE = 16
#: What this process reserved per item key stem, per budget (submit and collect are separate
#: task calls with separate runners; only what was reserved here is settled here).
_RESERVED: weakref.WeakKeyDictionary[Budget, dict[str, float]] = weakref.WeakKeyDictionary()
_RESERVED_LOCK = threading.Lock()


@dataclass(frozen=True)
class PollPolicy:
    """How patiently a batch is polled: exponential from ``initial_s`` to ``max_interval_s``
    with jitter, giving up after ``give_up_after_s`` (Google's window is 24 h; a batch
    still running then stays in the ledger and the next run picks it up)."""

    initial_s: float = 10.0
    max_interval_s: float = 300.0
    give_up_after_s: float = 25 * 3600.0


@dataclass
class BatchPlan:
    """What a batch run will do: rows for items not sent (images already stored, blocks an
    earlier run remembered), batches a crashed run left open (resumed, not recreated), and
    groups of items for new batches."""

    existing: list[ManifestRow] = field(default_factory=list)
    resumed: list[BatchJob] = field(default_factory=list)
    new_groups: list[list[WorkItem]] = field(default_factory=list)
    wanted: set[str] = field(default_factory=set)  # ids of recorded batches holding items of this plan


def owners(jobs: Iterable[BatchJob]) -> dict[str, str]:
    """Key stem -> id of the recorded batch that holds it."""
    return {key: job.job_id for job in jobs for key in job.keys}


@dataclass
class Submission:
    """A created (or resumed) batch, or the rows of items that could not be submitted."""

    job: BatchJob | None
    rows: list[ManifestRow] = field(default_factory=list)


def now_iso() -> str:
    """A ledger timestamp (ISO 8601, UTC, milliseconds)."""
    return utc_now().isoformat(timespec="milliseconds")


def _created(created_at: str) -> datetime:
    """When a batch was created, from its ledger record (now, when the record lacks it)."""
    try:
        start = datetime.fromisoformat(created_at)
    except ValueError:
        return utc_now()
    return start if start.tzinfo is not None else start.replace(tzinfo=UTC)


def _create_may_retry(exc: BaseException) -> bool:
    """Only answers that prove the batch was not created: a timeout may have created it,
    and a second create would be a second bill."""
    return isinstance(exc, (RateLimited, Overloaded)) or (isinstance(exc, ServerError) and exc.http_status is not None)


class BatchRunner:
    """Batch mode for one run against one store."""

    def __init__(
        self,
        api: BatchAPI,
        store: ImageStore,
        *,
        run_id: str,
        lander: ImageLander,
        limits: BatchLimits = BatchLimits(),
        poll: PollPolicy = PollPolicy(),
        policy: RetryPolicy = RetryPolicy(),
        verify_size: bool = True,
        listeners: Iterable[RowListener] = (),
        budget: Budget | None = None,
        retry_blocked: bool = False,
        quality: QualityGate | None = None,
        regenerate: Callable[[ImageRequest], Awaitable[ItemOutcome]] | None = None,
        retry_rejected: bool = False,
    ) -> None:
        self.api = api
        self.store = store
        self.run_id = run_id
        self.lander = lander
        self.ledger = BatchLedger(store)
        self.limits = limits
        self.poll = poll
        self.policy = policy
        self.verify_size = verify_size
        self.listeners = list(listeners)
        self.budget = budget
        self.retry_blocked = retry_blocked  # send prompts an earlier run saw blocked again
        #: the quality gate: a collected image is checked like a realtime one; an image that fails
        #: is made again by ``regenerate`` (a realtime request under the run's limits and budget)
        self.quality = quality
        self.regenerate = regenerate
        self.retry_rejected = retry_rejected  # make again what a person rejected or left for review

    async def _regenerate(self, request: ImageRequest) -> ItemOutcome:
        """A regeneration after failed checks, or an outcome that says none can be made."""
        if self.regenerate is not None:
            return await self.regenerate(request)
        return ItemOutcome.failure(ConfigurationError("no realtime route to make the image again"),
                                   started_at=utc_now(), t0=time.monotonic(), mode="batch")

    def _row(self, item: WorkItem, outcome: ItemOutcome) -> ManifestRow:
        return ManifestRow.from_outcome(item, outcome, run_id=self.run_id)

    def _failed(
        self, items: list[WorkItem], exc: BaseException, started: datetime, t0: float, *, attempts: int = 1,
        batch_name: str = "",
    ) -> list[ManifestRow]:
        """The rows of ``items`` that ended with ``exc`` together."""
        return [
            self._row(item, ItemOutcome.failure(exc, started_at=started, t0=t0, attempts=attempts, mode="batch",
                                                batch_name=batch_name))
            for item in items
        ]

    def _emit(self, rows: list[ManifestRow]) -> list[ManifestRow]:
        for row in rows:
            for listener in self.listeners:
                try:
                    listener(row)
                except Exception:  # progress display must never fail an item
                    log.debug("progress listener failed", exc_info=True)
        return rows

    # -- plan ------------------------------------------------------------------------------
    async def screen(self, items: list[WorkItem]) -> tuple[list[WorkItem], list[ManifestRow]]:
        """``(items to send, rows of the others)``: an item made already, or whose prompt an
        earlier run saw blocked (its ``~blocked.json`` marker), is not sent; one LIST each."""
        gate = asyncio.Semaphore(_LOOKUPS_AT_ONCE)

        async def lookup(item: WorkItem) -> ManifestRow | None:
            async with gate:
                key, sidecars = await asyncio.to_thread(self.store.find_with_sidecars, item.key_stem)
                if key is not None:
                    return self._row(item, await self.lander.read_existing(item, key, utc_now(), time.monotonic()))
                if not self.retry_blocked and (marker := await self.lander.standing_block(item, sidecars)):
                    return self._row(item, self.lander.remembered_block(marker, utc_now(), time.monotonic()))
                if self.quality is not None and find_review_marker(item.key_stem, sidecars):
                    return await self._kept_for_review(item)
                return None

        found = await asyncio.gather(*(lookup(item) for item in items))
        return [item for item, row in zip(items, found) if row is None], [row for row in found if row is not None]

    async def _kept_for_review(self, item: WorkItem) -> ManifestRow | None:
        """An image an earlier run kept under ``review/`` is not sent again: ``needs_review``
        and ``rejected`` stay as they are (unless ``retry_rejected``), and an ``unchecked`` one
        stays kept for a realtime run to judge without making it again (as the pipeline does)."""
        kept = await self.lander.kept_for_review(item, utc_now(), time.monotonic())
        if kept is None:
            return None
        review, earlier = kept
        if review.status == UNCHECKED:
            return self._row(item, replace(
                earlier, status=UNCHECKED, image=None, error_class="JudgeUnavailable",
                error_message="kept unchecked by an earlier run: nothing sent; a realtime run judges it without "
                              "making it again"))
        if not self.retry_rejected or review.run_id == self.run_id:
            return self._row(item, earlier)
        return None

    async def plan(self, items: list[WorkItem]) -> BatchPlan:
        """The whole plan of one list of items: ``open_batches``, ``plan_chunk``, ``resumed``."""
        open_jobs = await self.open_batches()
        plan = await self.plan_chunk(items, owners(open_jobs))
        plan.resumed = await self.resumed(open_jobs, plan.wanted)
        return plan

    async def open_batches(self) -> list[BatchJob]:
        """Every batch recorded and not yet collected (once per wave, before its items)."""
        return await asyncio.to_thread(self.ledger.open_jobs)

    async def plan_chunk(self, items: list[WorkItem], owner: dict[str, str]) -> BatchPlan:
        """Rows of items not to send, the recorded batches (job ids) that hold others, and
        new groups for the rest. ``owner`` maps key stems to open job ids (``owners``), so a
        wave read chunk by chunk never sends an item a recorded batch already holds."""
        plan = BatchPlan()
        pending, plan.existing = await self.screen(items)
        fresh: list[WorkItem] = []
        for item in pending:
            job_id = owner.get(item.key_stem)
            if job_id is None:
                fresh.append(item)
            else:
                plan.wanted.add(job_id)
        plan.new_groups = split_into_batches(fresh, self.limits)
        self._emit(plan.existing)
        return plan

    async def resumed(self, open_jobs: list[BatchJob], wanted: set[str]) -> list[BatchJob]:
        """The recorded batches to poll and collect. Every created batch is collected, even
        one whose items left the catalog: its images are paid for. A record that never got a
        batch name is only worth creating again for items this run still wants (``wanted``)."""
        resumed = [job for job in open_jobs if job.batch_name or job.job_id in wanted]
        keep = {job.job_id for job in resumed}
        for job in open_jobs:
            if job.job_id not in keep:
                await asyncio.to_thread(self.ledger.close, job, "abandoned")
        return resumed

    # -- submit ----------------------------------------------------------------------------
    async def submit(self, items: list[WorkItem]) -> Submission:
        """Reserve each item's batch worst case under ``--max-cost`` (items that do not fit
        are deferred, not submitted), then upload the JSONL, record the batch, create it,
        record its name. Items are looked at once more first: the plan may be old, and an
        image or a blocked marker another run wrote since then means nothing to send."""
        items, screened = await self.screen(items)
        self._emit(screened)
        items, deferred = self._reserve(items)
        deferred = screened + deferred
        if not items:
            return Submission(None, deferred)
        job = BatchJob(job_id=job_id_for(items), model=items[0].model, items=items, run_id=self.run_id,
                       created_at=now_iso())
        submission = await self.create(job)
        if submission.job is None:  # nothing was created: nothing will be billed
            self._settle({item.key_stem: 0.0 for item in items})
        submission.rows = deferred + submission.rows
        return submission

    def _reserve(self, items: list[WorkItem]) -> tuple[list[WorkItem], list[ManifestRow]]:
        if self.budget is None:
            return items, []
        fitting: list[WorkItem] = []
        deferred: list[WorkItem] = []
        for item in items:
            cost = batch_worst_case_cost_usd(get_model(item.model), item.image_size)
            if self.budget.reserve(cost):
                with _RESERVED_LOCK:
                    _RESERVED.setdefault(self.budget, {})[item.key_stem] = cost
                fitting.append(item)
            else:
                deferred.append(item)
        if not deferred:
            return fitting, []
        exc = BudgetExhausted(
            f"not submitted: {self.budget.describe_refusal()} is committed at batch prices; run again with a "
            "larger budget, or when the daily budget renews, to make the rest"
        )
        log.warning("%d items not submitted: %s reached", len(deferred), self.budget.refused_by.label)
        return fitting, self._emit(self._failed(deferred, exc, utc_now(), time.monotonic(), attempts=0))

    def _settle(self, billed: dict[str, float]) -> None:
        """Turn this process's reservations for these key stems into what was billed
        (an item reserved elsewhere, e.g. a resumed batch, only adds its cost)."""
        if self.budget is None:
            return
        for stem, usd in billed.items():
            with _RESERVED_LOCK:
                reserved = _RESERVED.get(self.budget, {}).pop(stem, 0.0)
            self.budget.settle(reserved, usd)

    async def recover(self, job: BatchJob) -> Submission:
        """A ledger record without a batch name: the process died around the create call.
        Look for the batch by its display name before creating one, so that window can
        not bill twice either."""
        found: BatchStatus | None = None
        try:
            found, _ = await call_with_retries(lambda: self.api.find(job.display_name), self.policy)
        except ProviderError as exc:
            log.warning("could not list batches to recover %s (%s); creating it", job.display_name, exc.message)
        if found is not None:
            job.batch_name = found.name
            await asyncio.to_thread(self.ledger.save, job)
            log.info("recovered %s for %s", job.batch_name, job.display_name)
            return Submission(job)
        remaining, screened = await self.screen(job.items)
        if not screened:
            return await self.create(job)
        self._emit(screened)  # made or blocked since it was recorded: the record goes, the rest is submitted anew
        await asyncio.to_thread(self.ledger.close, job, "abandoned")
        submission = await self.submit(remaining) if remaining else Submission(None)
        submission.rows = screened + submission.rows
        return submission

    async def create(self, job: BatchJob) -> Submission:
        """Upload, record, create and record again the batch of ``job``."""
        started, t0 = utc_now(), time.monotonic()
        tries = 0

        async def upload() -> str:
            nonlocal tries
            tries += 1
            return await self.api.upload_jsonl(data, job.display_name)

        try:
            data = self.api.input_file(job.items)
            job.file_name, _ = await call_with_retries(upload, self.policy)
            await asyncio.to_thread(self.ledger.save, job)  # the intent, before any bill
            status = await self._create_with_retries(job)
        except ProviderError as exc:
            log.warning("batch %s could not be submitted: %s", job.display_name, exc.message)
            return Submission(None, self._emit(self._failed(job.items, exc, started, t0, attempts=max(tries, 1))))
        job.batch_name = status.name
        await asyncio.to_thread(self.ledger.save, job)
        log.info("created %s for %d items (%s)", job.batch_name, len(job.items), job.display_name)
        return Submission(job)

    async def _create_with_retries(self, job: BatchJob) -> BatchStatus:
        """Retried only on answers that prove nothing was created (see ``_create_may_retry``)."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(_create_may_retry), wait=self.policy.wait(), stop=self.policy.stop(), reraise=True
        )
        return await retrying(self.api.create, job.model, job.file_name, job.display_name)

    # -- wait ------------------------------------------------------------------------------
    async def wait(self, job: BatchJob) -> BatchStatus:
        """Poll until the batch ends, or ``give_up_after_s`` passes (the status then says
        it is still running). Transient poll failures are retried with the same backoff."""

        def last_status(state: RetryCallState) -> BatchStatus:
            assert state.outcome is not None
            status: BatchStatus = state.outcome.result()  # a failed last poll raises its error here
            return status

        retrying = AsyncRetrying(
            retry=retry_if_result(lambda status: not status.terminal) | retry_if_exception(is_retryable),
            wait=wait_exponential_jitter(initial=self.poll.initial_s, max=self.poll.max_interval_s,
                                         jitter=self.poll.initial_s / 2),
            stop=stop_after_delay(self.poll.give_up_after_s),
            retry_error_callback=last_status,
            reraise=True,
        )
        status: BatchStatus = await retrying(self.api.get, job.batch_name)
        log.info("%s is %s", job.batch_name, status.state)
        return status

    # -- collect ---------------------------------------------------------------------------
    async def collect(self, job: BatchJob, status: BatchStatus) -> list[ManifestRow]:
        """Rows for every item of ``job``: images landed from a succeeded batch, ``deferred``
        for a batch that ended without results (or is still running), per-item errors
        classified like realtime ones."""
        started, t0 = _created(job.created_at), time.monotonic()
        exc: BaseException  # what every item of a batch without results is failed (or deferred) with
        if not status.terminal:
            exc = BatchNotCompleted(
                f"{job.batch_name} is still {status.state} after polling; it stays recorded and the next run "
                "collects it", batch_name=job.batch_name, state=status.state)
            return self._emit(self._rows_for(job, exc, started, t0))
        if not status.succeeded:
            why = f": {status.error_message}" if status.error_message else ""
            exc = BatchNotCompleted(f"{job.batch_name} ended {status.state}{why}; nothing was made or billed, "
                                    "the items are deferred to the next run", batch_name=job.batch_name,
                                    state=status.state)
            await asyncio.to_thread(self.ledger.close, job, status.state)
            self._settle({item.key_stem: 0.0 for item in job.items})
            return self._emit(self._rows_for(job, exc, started, t0))
        if not status.responses_file:
            exc = BadResponse(f"{job.batch_name} succeeded without a responses file")
            return self._emit(self._rows_for(job, exc, started, t0))
        stream = await self.api.download(status.responses_file)
        rows: list[ManifestRow] = []
        by_key = {self.api.result_key(item.key_stem): item for item in job.items}
        seen: set[str] = set()
        try:
            for line in self.api.read_results(stream):
                item = by_key.get(line.key or "")
                if item is None or item.key_stem in seen:
                    log.warning("%s: result line for unknown key %r ignored (%s)", job.batch_name, line.key, line.problem)
                    continue
                seen.add(item.key_stem)
                row = await self._land_line(job, item, line, started)
                if row is not None:
                    rows.append(self._emit([row])[0])
        finally:
            stream.close()
        missing = [item for item in job.items if item.key_stem not in seen]
        if missing:
            exc = BadResponse(f"{job.batch_name} returned no result line for this item")
            rows += self._emit(self._failed(missing, exc, started, t0, batch_name=job.batch_name))
        await asyncio.to_thread(self.ledger.close, job, "collected")
        billed = {item.key_stem: 0.0 for item in job.items}
        by_row = {(r.row_number, r.sku, r.variant): r for r in rows}
        for item in job.items:
            row = by_row.get((item.row_number, item.sku, item.variant))
            if row is not None and row.status == "succeeded":
                billed[item.key_stem] = float(row.cost_usd or 0.0)
        self._settle(billed)
        return rows

    def _rows_for(self, job: BatchJob, exc: BaseException, started: datetime, t0: float) -> list[ManifestRow]:
        return self._failed(job.items, exc, started, t0, batch_name=job.batch_name)

    async def _land_line(
        self, job: BatchJob, item: WorkItem, line: ResultLine, started: datetime
    ) -> ManifestRow | None:
        """The row for one result line; None when the image is already stored (a
        collection that crashed half way landed it, and ``plan`` already reported it)."""
        t0 = time.monotonic()
        if await asyncio.to_thread(self.store.find_existing, item.key_stem) is not None:
            return None
        try:
            spec = get_model(item.model)
            if line.error is not None:
                code = line.error.get("code")
                raise classify_status(code if isinstance(code, int) else 500, {"error": line.error}, model=spec.id)
            if line.response is None:
                raise BadResponse(f"result line has neither response nor error{f' ({line.problem})' if line.problem else ''}")
            image = await image_from_response(line.response, image_request(item), spec,
                                              verify_size=self.verify_size, batch=True)
        except (ProviderError, ConfigurationError) as exc:
            if isinstance(exc, ContentBlocked):  # billed: the next run must not send it again
                await self.lander.remember_block(item, exc, started)
            charge = billed_charge(exc)
            failed = ItemOutcome.failure(exc, started_at=started, t0=t0, attempts=1, mode="batch",
                                         batch_name=job.batch_name, charges=(charge,) if charge else ())
            return self._row(item, failed)
        if self.retry_blocked:
            await self.lander.forget_block(item)
        outcome = ItemOutcome(
            status="succeeded", started_at=started, attempts=1, image=image, model=image.model, mode="batch",
            batch_name=job.batch_name, charges=(Charge("batch image", image.cost_usd, image.usage),),
            latency_s=round(max(0.0, (utc_now() - started).total_seconds()), 3),
        )
        finished = None
        if self.quality is not None:  # judged in realtime; failures made again in realtime (docs/quality.md)
            outcome, finished = await self.quality.check(
                item, outcome, image_request(item), self._regenerate, context=f"row {item.row_number} (sku {item.sku})"
            )
        elif item.output_preset:  # QA as in realtime mode; a batch result cannot be regenerated in place
            outcome, finished = await apply_output_preset(
                item.output_preset, outcome, None, context=f"row {item.row_number} (sku {item.sku})"
            )
        return self._row(item, await self.lander.land(item, outcome, finished))
