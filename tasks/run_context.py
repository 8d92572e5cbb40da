"""The live objects one flow run shares between its task runs in this process.

A rate controller only limits anything if every task thread of a run uses the *same* one,
and clients and stores are expensive to rebuild per task; yet Prefect task parameters should
stay small and serialisable. So the flow registers its ``RunContext`` here under the flow run
id and passes only that id to tasks.
"""
from __future__ import annotations

import threading
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
from bananaflow.planning.work import WorkItem
from bananaflow.providers.settings import ProviderSettings
from bananaflow.reports.progress import ProgressTracker
from bananaflow.reports.summary import SummaryTally
from bananaflow_prefect.tasks.guard import WorkerGuard


@dataclass(frozen=True)
class BatchSettings:
    limits: BatchLimits = BatchLimits()
    poll: PollPolicy = PollPolicy()


@dataclass
class RunContext:
    """One run, configured: options resolved against blocks and the environment."""

    run_id: str
    catalog: str
    options: RunOptions
    job: Job
    provider_settings: ProviderSettings
    store: ImageStore
    limits: LimitSettings
    admission: Admission
    policy: RetryPolicy
    spool: Spool
    guard: WorkerGuard  # the Prefect global concurrency slot this run holds while generating
    batch: BatchSettings = BatchSettings()
    progress: ProgressTracker = field(default_factory=lambda: ProgressTracker(0))
    claims: KeyClaims | None = None
    drained: int = 0  # spooled images uploaded by this run
    pump: ItemPump | None = None  # where chunk tasks send their items while the run generates
    #: every final row of the run, on local disk (the manifest is written from it) ...
    rows: RowLog = field(default_factory=RowLog)
    #: ... and counted as it is added (the summary): the flow holds no row per item
    tally: SummaryTally = field(default_factory=SummaryTally)
    #: rows a retried chunk keeps from its earlier attempt (items that ended for good there),
    #: by item key; held only between a chunk's attempts
    kept_for_retry: dict[str, ManifestRow] = field(default_factory=dict)
    _kept_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, rows: list[ManifestRow], requested_models: list[str] | None = None) -> int:
        """Keep a run's final rows: counted for the summary, appended to the row log."""
        models = requested_models or [""] * len(rows)
        for row, model in zip(rows, models):
            self.tally.add(row, requested_model=model)
        return self.rows.add(rows)

    def keep_for_retry(self, finished: dict[str, ManifestRow]) -> None:
        """A chunk will run again: keep the rows of its items that ended for good (stored,
        spooled, blocked), by item key. Running those again could only make their rows
        worse: with S3 away, an image stored by the first attempt would read as failed."""
        with self._kept_lock:
            self.kept_for_retry.update(finished)

    def take_kept(self, items: list[WorkItem]) -> dict[str, ManifestRow]:
        """The rows kept for ``items`` by an earlier attempt of their chunk (and forget them)."""
        with self._kept_lock:
            return {item.key_stem: row for item in items if (row := self.kept_for_retry.pop(item.key_stem, None))}

    @property
    def bucket(self) -> str:
        return self.store.bucket

    @property
    def prefix(self) -> str:
        return self.store.prefix


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
