"""Batch mode as Prefect tasks: plan, then per batch submit → poll → collect, in parallel.

Polling is its own task (``poll-batch``) whose only input is the recorded batch: a run
that crashed while waiting is resumed by running the same job again, which finds the
batch in the ledger and polls it; nothing is created twice.
"""
from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture

from bananaflow.batch.api import BatchAPI, BatchStatus, GeminiBatchAPI
from bananaflow.batch.gcs_staging import GcsStaging, staging_uri
from bananaflow.batch.ledger import LEDGER_DIR, BatchJob
from bananaflow.batch.runner import BatchPlan, BatchRunner, Submission, owners
from bananaflow.batch.vertex_api import VertexBatchAPI
from bananaflow.errors import BatchNotCompleted, is_retryable
from bananaflow.generation.gate import judge_in_flight_for, realtime_regenerator
from bananaflow.generation.lander import ImageLander
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.outcome import ItemOutcome, utc_now
from bananaflow.landing.storage import ImageStore
from bananaflow.planning.work import WorkItem
from bananaflow.providers import make_provider
from bananaflow.providers.gcp_auth import shared_tokens
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import excerpt
from bananaflow_prefect.tasks import run_context
from bananaflow_prefect.tasks.generation import quality_gate

T = TypeVar("T")


def _run(run_id: str, step: Callable[[BatchRunner], Awaitable[T]]) -> T:
    run = run_context.get(run_id)
    config = run.config

    async def go() -> T:
        api = batch_api(config.provider_settings, config.store)
        gate = quality_gate(run, judge_in_flight_for(config.limits.max_in_flight))
        provider = make_provider(config.provider_settings) if gate is not None else None
        # failed checks are made again in realtime, under the run's limits and budget
        regenerate = realtime_regenerator(provider, run.admission, config.policy, mode="batch") if provider else None
        try:
            runner = BatchRunner(
                api, config.store, run_id=run_id,
                lander=ImageLander(config.store, run_id=run_id, spool=run.spool, mode="batch"),
                limits=config.batch.limits, poll=config.batch.poll, policy=config.policy,
                verify_size=config.provider_settings.should_verify_size, listeners=[run.state.progress.item_done],
                budget=run.admission.budget, retry_blocked=config.options.spend.retry_blocked,
                quality=gate, regenerate=regenerate, retry_rejected=config.quality.retry_rejected,
            )
            return await step(runner)
        finally:
            await api.aclose()
            if provider is not None:
                await provider.aclose()
            if gate is not None and gate.judge is not None:
                await gate.judge.judge.aclose()

    return asyncio.run(go())


def batch_api(settings: ProviderSettings, store: ImageStore) -> BatchAPI:
    """AI Studio's Batch mode, or Vertex AI batch prediction staged in Cloud Storage."""
    if settings.kind != "vertex":
        return GeminiBatchAPI(settings)
    prefix = staging_uri(store.uri(store.key(*LEDGER_DIR)), os.environ)
    credentials = None if os.environ.get("STORAGE_EMULATOR_HOST") else shared_tokens(settings.gcp_credentials).credentials
    return VertexBatchAPI(settings, GcsStaging(prefix, project=settings.project, credentials=credentials))


#: Items one plan-batches task looks at: a wave is read from the work store this many at a
#: time, so the flow never holds a whole wave of work items at once.
PLAN_CHUNK = 2000


@task(name="open-batches", cache_policy=NO_CACHE, persist_result=False)
def open_batches(run_id: str) -> list[BatchJob]:
    """The batches a crashed (or still waiting) run recorded and nobody collected yet."""
    return _run(run_id, lambda runner: runner.open_batches())


@task(name="plan-batches", cache_policy=NO_CACHE, persist_result=False)
def plan_batches(run_id: str, items: list[WorkItem], owner: dict[str, str]) -> BatchPlan:
    """Skip stored images and remembered blocks, leave items a recorded batch holds to it,
    split the rest into batches."""
    return _run(run_id, lambda runner: runner.plan_chunk(items, owner))


@task(name="resume-batches", cache_policy=NO_CACHE, persist_result=False)
def resume_batches(run_id: str, open_jobs: list[BatchJob], wanted: set[str]) -> list[BatchJob]:
    """The recorded batches to poll and collect (records nobody needs are closed)."""
    return _run(run_id, lambda runner: runner.resumed(open_jobs, wanted))


def _submit_name() -> str:
    from prefect.runtime import task_run

    items = task_run.parameters.get("items") or []
    return f"submit-batch: {len(items)} items"


@task(name="submit-batch", task_run_name=_submit_name, cache_policy=NO_CACHE, persist_result=False)
def submit_batch(run_id: str, items: list[WorkItem], recorded: BatchJob | None = None) -> Submission:
    """Upload the JSONL, record the batch, create it; for a ``recorded`` job a crash left
    without a batch name, first look for the batch by name. Never raises for provider
    errors: items that could not be submitted come back as rows."""
    if recorded is not None:
        return _run(run_id, lambda runner: runner.recover(recorded))
    return _run(run_id, lambda runner: runner.submit(items))


def _poll_name() -> str:
    from prefect.runtime import task_run

    submission = task_run.parameters.get("submission")
    job = getattr(submission, "job", None)
    return f"poll {job.batch_name}" if job is not None else "poll (nothing submitted)"


def _retry_if_transient(task, task_run_, state) -> bool:  # noqa: ANN001 (Prefect's signature)
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - only deciding whether to retry
        return is_retryable(exc)
    return False


@task(name="poll-batch", task_run_name=_poll_name, retries=3, retry_delay_seconds=30,
      retry_condition_fn=_retry_if_transient, cache_policy=NO_CACHE, persist_result=False)
def poll_batch(run_id: str, submission: Submission) -> BatchStatus | None:
    """Wait for a recorded batch to end, with backoff. It reads only: safe to run again
    at any time, from any process, for a batch another run created."""
    if submission.job is None:
        return None
    job = submission.job
    return _run(run_id, lambda runner: runner.wait(job))


@task(name="collect-batch", cache_policy=NO_CACHE, persist_result=False)
def collect_batch(run_id: str, submission: Submission, status: BatchStatus | None) -> list[ManifestRow]:
    """Download results and land every image through the realtime path; rows for all."""
    job = submission.job
    if job is None or status is None:
        return submission.rows
    return submission.rows + _run(run_id, lambda runner: runner.collect(job, status))


def generate_in_batches(run_id: str, items: Iterable[WorkItem]) -> list[ManifestRow]:
    """The whole batch mode for one wave of a flow run (its ``RunContext.batch`` settings):
    rows for every item, whatever fails. ``items`` is read as a stream, ``PLAN_CHUNK`` at a
    time; each chunk's batches are submitted while the next chunk is planned."""
    open_jobs = open_batches(run_id)
    owner = owners(open_jobs)
    rows: list[ManifestRow] = []
    wanted: set[str] = set()
    chains: list[tuple[list[WorkItem], PrefectFuture]] = []
    for chunk in _chunks(items, PLAN_CHUNK):
        plan = plan_batches(run_id, chunk, owner)
        rows += plan.existing
        wanted |= plan.wanted
        chains += [(group, _chain(run_id, submit_batch.submit(run_id, group))) for group in plan.new_groups]
    for job in resume_batches(run_id, open_jobs, wanted):
        submission = Submission(job) if job.batch_name else submit_batch.submit(run_id, job.items, recorded=job)
        chains.append((job.items, _chain(run_id, submission)))
    for batch_items, collect in chains:
        rows.extend(_rows_of(run_id, batch_items, collect))
    return rows


def _chunks(items: Iterable[WorkItem], size: int) -> Iterator[list[WorkItem]]:
    chunk: list[WorkItem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _chain(run_id: str, submission: PrefectFuture | Submission) -> PrefectFuture:
    """poll -> collect for one (submitted or recorded) batch; a future passed as a task
    argument reaches the task as its result: Prefect resolves it."""
    poll = poll_batch.submit(run_id, submission)  # type: ignore[arg-type]  # futures resolved
    return collect_batch.submit(run_id, submission, poll)  # type: ignore[call-overload]  # futures resolved


def _rows_of(run_id: str, batch_items: list[WorkItem], future: PrefectFuture) -> list[ManifestRow]:
    """A batch's rows; if a task of its chain died, its items are ``deferred``: the batch
    (if created) stays in the ledger and the next run collects it."""
    future.wait()
    if future.state.is_completed():
        return future.result()
    message = f"batch task ended {future.state.name}: {future.state.message or ''}".strip()
    exc = BatchNotCompleted(excerpt(message, 400))  # redacted before the cut
    started, t0 = utc_now(), time.monotonic()
    rows = [ManifestRow.from_outcome(item, ItemOutcome.failure(exc, started_at=started, t0=t0, mode="batch"),
                                     run_id=run_id) for item in batch_items]
    for row in rows:
        run_context.get(run_id).state.progress.item_done(row)
    return rows
