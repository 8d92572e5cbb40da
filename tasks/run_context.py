"""The live objects one flow run shares between its task runs in this process.

A rate controller only limits anything if every task thread of a run uses the *same* one,
and clients and stores are expensive to rebuild per task; yet Prefect task parameters should
stay small and serialisable. So the flow registers its ``RunContext`` here under the flow run
id and passes only that id to tasks.

A context is three things with one owner each:

* ``RunConfig``: what was decided when the run opened (options resolved against blocks and
  the environment). Frozen: nothing changes it afterwards.
* the run's collaborators (admission with its learned limits and budget, spool, claims, the
  worker guard): live objects that keep their own state behind their own methods.
* ``RunState``: what the run accumulates while it goes (progress, rows, the tally, spooled
  images uploaded, the item pump while generating, rows kept between a chunk's attempts),
  changed only through its methods.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from bananaflow.batch.runner import PollPolicy
from bananaflow.generation.pump import ItemPump
from bananaflow.generation.retry import RetryPolicy
from bananaflow.landing.claims import KeyClaims
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.rowlog import RowLog
from bananaflow.landing.spool import Spool
from bananaflow.landing.storage import ImageStore
from bananaflow.limits.admission import Admission
from bananaflow.limits.settings import LimitSettings
from bananaflow.options import RunOptions
from bananaflow.planning.batch_sizing import BatchLimits
from bananaflow.planning.jobspec import Job
from bananaflow.planning.quality import QualitySettings
from bananaflow.planning.work import WorkItem
from bananaflow.providers.settings import ProviderSettings
from bananaflow.reports.progress import ProgressTracker
from bananaflow.reports.summary import SummaryTally
from bananaflow_prefect.tasks.guard import WorkerGuard


@dataclass(frozen=True)
class BatchSettings:
    limits: BatchLimits = BatchLimits()
    poll: PollPolicy = PollPolicy()


@dataclass(frozen=True)
class RunConfig:
    """One run, configured: fixed when the run opens."""

    run_id: str
    catalog: str
    options: RunOptions
    job: Job
    provider_settings: ProviderSettings
    store: ImageStore
    limits: LimitSettings
    policy: RetryPolicy
    batch: BatchSettings = BatchSettings()
    #: the quality gate (``--qa``, the job spec's ``qa:``, the provider block's), resolved once
    quality: QualitySettings = QualitySettings()

    @property
    def bucket(self) -> str:
        return self.store.bucket

    @property
    def prefix(self) -> str:
        return self.store.prefix


class RunState:
    """What one run accumulates while it goes; shared by the flow and its task threads."""

    def __init__(self) -> None:
        self._progress: ProgressTracker | None = None
        self._pump: ItemPump | None = None
        self._drained = 0
        #: every final row of the run, on local disk (the manifest is written from it) ...
        self.rows = RowLog()
        #: ... and counted as it is added (the summary): the flow holds no row per item
        self.tally = SummaryTally()
        #: rows a retried chunk keeps from its earlier attempt (items that ended for good
        #: there), by item key; held only between a chunk's attempts
        self._kept_for_retry: dict[str, ManifestRow] = {}
        #: what the earlier attempts of a retried chunk were billed for an item (no-image
        #: answers, blocked answers ...), by item key: its final row includes it
        self._billed_before: dict[str, float] = {}
        self._lock = threading.Lock()

    # -- progress ------------------------------------------------------------------------
    def begin(self, total: int) -> ProgressTracker:
        """Generation starts with ``total`` items to make: the tracker that counts them."""
        if self._progress is not None:
            raise RuntimeError("a run's generation begins once")
        self._progress = ProgressTracker(total)
        return self._progress

    @property
    def progress(self) -> ProgressTracker:
        if self._progress is None:
            raise RuntimeError("the run has not begun generating: RunState.begin(total) first")
        return self._progress

    # -- the item pump, while chunk tasks run ---------------------------------------------
    @contextmanager
    def pumping(self, pump: ItemPump) -> Iterator[ItemPump]:
        """Chunk tasks send their items to ``pump`` while this block runs."""
        self._pump = pump
        try:
            yield pump
        finally:
            self._pump = None

    @property
    def pump(self) -> ItemPump | None:
        return self._pump

    # -- spool ---------------------------------------------------------------------------
    def uploaded_from_spool(self, count: int) -> None:
        with self._lock:
            self._drained += count

    @property
    def drained(self) -> int:
        """Spooled images uploaded by this run."""
        return self._drained

    # -- rows ----------------------------------------------------------------------------
    def record(self, rows: list[ManifestRow], requested_models: list[str] | None = None) -> int:
        """Keep a run's final rows: counted for the summary, appended to the row log."""
        models = requested_models or [""] * len(rows)
        for row, model in zip(rows, models):
            self.tally.add(row, requested_model=model)
        return self.rows.add(rows)

    def replace_rows(self, rows: Iterable[ManifestRow]) -> int:
        """The run's final rows after a review (decisions applied, re-made images in place of
        the refused): a new row log and tally from them."""
        fresh, tally = RowLog(), SummaryTally()
        tally.fallbacks = self.tally.fallbacks  # which model each item asked for is not in its row
        for batch in _batches(rows):
            tally.add_all(batch)
            fresh.add(batch)
        old, self.rows, self.tally = self.rows, fresh, tally
        old.close()
        return fresh.count

    def keep_for_retry(self, finished: dict[str, ManifestRow]) -> None:
        """A chunk will run again: keep the rows of its items that ended for good (stored,
        spooled, blocked), by item key. Running those again could only make their rows
        worse: with S3 away, an image stored by the first attempt would read as failed."""
        with self._lock:
            self._kept_for_retry.update(finished)

    def carry_billed(self, rows: dict[str, ManifestRow]) -> None:
        """Rows (by item key) that a chunk's next attempt replaces: what they were billed is
        added to the row that attempt makes, so the manifest shows all an item cost."""
        with self._lock:
            for key, row in rows.items():
                if row.cost_usd:
                    self._billed_before[key] = self._billed_before.get(key, 0.0) + row.cost_usd

    def with_billed_before(self, key: str, row: ManifestRow) -> ManifestRow:
        """``row`` with what earlier attempts of its chunk were billed for the item added (and forgotten)."""
        with self._lock:
            before = self._billed_before.pop(key, 0.0)
        if before:
            row.cost_usd = round((row.cost_usd or 0.0) + before, 6)
        return row

    def take_kept(self, items: list[WorkItem]) -> dict[str, ManifestRow]:
        """The rows kept for ``items`` by an earlier attempt of their chunk (and forget them)."""
        with self._lock:
            return {item.key_stem: row for item in items if (row := self._kept_for_retry.pop(item.key_stem, None))}

    @property
    def kept_for_retry(self) -> int:
        """How many rows wait for their chunk's next attempt."""
        with self._lock:
            return len(self._kept_for_retry)


def _batches(rows: Iterable[ManifestRow], size: int = 1000) -> Iterator[list[ManifestRow]]:
    batch: list[ManifestRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(frozen=True)
class RunContext:
    """One run: its fixed configuration, its live collaborators, and its changing state."""

    config: RunConfig
    admission: Admission  # limits, breakers, fallback and budget; keeps the limits it learns
    spool: Spool
    guard: WorkerGuard  # the Prefect global concurrency slot this run holds while generating
    claims: KeyClaims | None = None
    state: RunState = field(default_factory=RunState)

    @property
    def run_id(self) -> str:
        return self.config.run_id


_lock = threading.Lock()
_runs: dict[str, RunContext] = {}


def register(context: RunContext) -> None:
    with _lock:
        _runs[context.run_id] = context


def get(run_id: str) -> RunContext:
    with _lock:
        try:
            return _runs[run_id]
        except KeyError:
            raise RuntimeError(
                f"no context registered for run {run_id}: generation tasks must run in the flow's process"
            ) from None


def release(run_id: str) -> None:
    with _lock:
        _runs.pop(run_id, None)
