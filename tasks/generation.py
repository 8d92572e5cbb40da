"""The generation task: one chunk of work items, made concurrently under the run's limits."""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.runtime import task_run
from prefect.tasks import exponential_backoff

from bananaflow import errors
from bananaflow.generation.gate import QualityGate, gate_for_run, judge_in_flight_for
from bananaflow.generation.pipeline import ItemProcessor
from bananaflow.generation.pump import ItemPump, window_for
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.outcome import ItemOutcome, utc_now
from bananaflow.planning.work import WorkItem
from bananaflow.providers import make_provider
from bananaflow.quality.build import build_judge
from bananaflow.secrets import excerpt
from bananaflow_prefect.tasks import run_context
from bananaflow_prefect.tasks.run_context import RunContext

#: Prefect-level retries of a chunk, on top of the engine's per-request retries. A retried
#: chunk pays only for its failed items: the others are found in S3 under their keys.
CHUNK_RETRIES = 2


@contextmanager
def item_pump(run: RunContext) -> Iterator[ItemPump]:
    """The run's item pump (one loop, one provider client, one window of workers) while
    its chunk tasks run: they queue their items on it, so a freed in-flight slot is refilled
    from any chunk at once (see ``bananaflow.generation.pump``)."""

    config = run.config
    judges = judge_in_flight_for(config.limits.max_in_flight) if config.quality.enabled else 0

    def make_processor() -> ItemProcessor:
        return ItemProcessor(
            make_provider(config.provider_settings),
            config.store,
            run.admission,
            config.policy,
            run_id=config.run_id,
            spool=run.spool,
            listeners=[run.state.progress.item_done],
            claims=run.claims,
            retry_blocked=config.options.spend.retry_blocked,
            quality=quality_gate(run, judges),
            retry_rejected=config.quality.retry_rejected,
        )

    async def close(processor: ItemProcessor) -> None:
        await processor.provider.aclose()
        if processor.quality is not None and processor.quality.judge is not None:
            await processor.quality.judge.judge.aclose()

    window = window_for(config.limits.max_in_flight, judges)
    with ItemPump(make_processor, window=window, close_processor=close) as pump:
        with run.state.pumping(pump):
            yield pump


def quality_gate(run: RunContext, judge_in_flight: int) -> QualityGate | None:
    """The run's quality gate (None with ``--qa off``): the judge of the run's provider route
    and model, built on the calling loop (its client belongs there)."""
    config = run.config
    quality = config.quality
    if not quality.enabled:
        return None
    judge = build_judge(config.provider_settings, quality.model)
    return gate_for_run(judge, max_regenerations=quality.max_regenerations, budget=run.admission.budget,
                        policy=config.policy, judge_max_in_flight=judge_in_flight)


class RetryableItemsFailed(Exception):
    """Some items of a chunk ended with a retryable error; Prefect should run it again."""


def _retry_only_retryable(task, task_run_, state) -> bool:  # noqa: ANN001 (Prefect's signature)
    try:
        state.result()
    except RetryableItemsFailed:
        return True
    except Exception:
        return False
    return False


class TaskFailed(errors.BananaflowError):
    """The chunk's task itself ended (crashed, cancelled) before its items had rows."""


def chunk_name() -> str:
    """``SKU-0100 … SKU-0149 · 50 images (3/40)``: chunks hold SKU-sorted items (see
    ``WorkStore.chunks``), so the name's range tells a person which task run made a product,
    and the manifest's ``task_run_id`` (``bananaflow find SKU``) links it exactly."""
    params = task_run.parameters
    items = params.get("items") or []
    if not items:
        return "generate (empty)"
    first, last = items[0].sku, items[-1].sku
    span = first if first == last else f"{first} … {last}"
    label = f" ({params['label']})" if params.get("label") else ""
    return f"{span} · {len(items)} image{'s' if len(items) != 1 else ''}{label}"


@task(
    name="generate-images",
    task_run_name=chunk_name,
    retries=CHUNK_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=_retry_only_retryable,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def generate_images(run_id: str, items: list[WorkItem], label: str = "") -> int:
    """Generate, verify and upload a chunk of images; their manifest rows go to the run's
    row log and tally (``RunState.record``), not back to the flow: returns how many.
    Raises only to ask Prefect for a retry of retryable failures."""
    state = run_context.get(run_id).state
    if state.pump is None:
        raise RuntimeError(f"run {run_id} has no item pump: generation tasks run inside item_pump(run)")
    kept = state.take_kept(items)  # an earlier attempt's rows for items that ended for good
    made = iter(state.pump.process([item for item in items if item.key_stem not in kept]))
    rows = [kept.get(item.key_stem) or next(made) for item in items]
    retryable: list[ManifestRow] = []
    finished: dict[str, ManifestRow] = {}
    for item, row in zip(items, rows):
        row.task_run_id = str(task_run.id)
        if row.retryable:
            retryable.append(row)
        else:
            finished[item.key_stem] = row
    if retryable and task_run.run_count <= CHUNK_RETRIES:
        state.progress.retract(retryable)  # the retry reports these items again
        state.keep_for_retry(finished)
        raise RetryableItemsFailed(
            f"{len(retryable)} of {len(rows)} items failed with retryable errors "
            f"(e.g. row {retryable[0].row_number}: {retryable[0].error_class}); retrying the chunk"
        )
    return state.record(rows, [item.model for item in items])


def settle_chunk(chunk: list[WorkItem], future: PrefectFuture, run: RunContext) -> int:
    """Wait for a chunk task; if the task itself died (not an item), its items still get rows."""
    future.wait()
    state = future.state
    if state.is_completed():
        return future.result()
    message = f"generation task ended {state.name}: {state.message or ''}".strip()
    kept = run.state.take_kept(chunk)  # items an earlier attempt of the task finished for good
    failed = ItemOutcome.failure(TaskFailed(excerpt(message, 500)), started_at=utc_now(), t0=time.monotonic())
    return run.state.record([
        kept.get(item.key_stem) or ManifestRow.from_outcome(item, failed, run_id=run.run_id) for item in chunk
    ])
