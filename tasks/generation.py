"""The generation task: one chunk of work items, made concurrently under the run's limits."""
from __future__ import annotations

import asyncio

from prefect import task
from prefect.runtime import task_run
from prefect.tasks import exponential_backoff

from bananaflow import errors
from bananaflow.reports.manifest import ManifestRow
from bananaflow.generation.pipeline import ItemProcessor
from bananaflow.providers import make_provider
from bananaflow.planning.work import WorkItem
from bananaflow_prefect.tasks import resources

#: Prefect-level retries of a chunk, on top of the engine's per-request retries. A retried
#: chunk pays only for its failed items: the others are found in S3 under their keys.
CHUNK_RETRIES = 2


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


def _is_retryable_row(row: ManifestRow) -> bool:
    cls = getattr(errors, row.error_class, None) if row.error_class else None
    return row.status == "failed" and isinstance(cls, type) and getattr(cls, "retryable", False)


def chunk_name() -> str:
    """``SKU-0100 … SKU-0149 · 50 images (3/40)``: chunks hold SKU-sorted items (see
    ``work.chunked``), so the name's range tells a person which task run made a product,
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
    cache_policy=None,
    persist_result=False,
)
def generate_images(run_id: str, items: list[WorkItem], label: str = "") -> list[ManifestRow]:
    """Generate, verify and upload a chunk of images; returns their manifest rows (never
    the bytes). Raises only to ask Prefect for a retry of retryable failures."""
    res = resources.get(run_id)

    async def run() -> list[ManifestRow]:
        provider = make_provider(res.provider_settings)
        try:
            processor = ItemProcessor(
                provider,
                res.store,
                res.controller,
                res.policy,
                run_id=run_id,
                spool=res.spool,
                listeners=[res.progress.item_done],
                claims=res.claims,
                admission=res.extra.get("admission"),  # type: ignore[arg-type]
            )
            return await processor.process_all(items)
        finally:
            await provider.aclose()

    rows = asyncio.run(run())
    for row in rows:
        row.task_run_id = str(task_run.id)
    retryable = [row for row in rows if _is_retryable_row(row)]
    if retryable and task_run.run_count <= CHUNK_RETRIES:
        raise RetryableItemsFailed(
            f"{len(retryable)} of {len(rows)} items failed with retryable errors "
            f"(e.g. row {retryable[0].row_number}: {retryable[0].error_class}); retrying the chunk"
        )
    return rows
