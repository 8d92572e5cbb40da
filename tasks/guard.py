"""The coarse cross-worker guard: a Prefect global concurrency limit per limits block.

The precise per-request limits live in the engine (in this process, or in Redis with
``BANANAFLOW_REDIS_URL``). Prefect's global concurrency limits are correct across processes
but slow when saturated (see docs/operations.md), so they guard something coarse instead:
how many runs generate with one limits block at once. A run holds one slot from its first
request to its last; with ``worker_slots = N`` and no Redis, each run also takes 1/N of
every limit (``LimitSettings.split``), so N runs on N workers together stay within the
project's limits, and a fifth shard on a four-slot limit waits for a slot instead of
pushing the provider over. The limit shows, with its active slots, under Concurrency in
the Prefect UI.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from bananaflow.limits.backends import REDIS_URL_ENV
from bananaflow.limits.settings import LimitSettings

#: How long a run waits for a slot before it fails (other shards hold them for their whole run).
SLOT_WAIT_S = 24 * 3600.0


def guard_name(limits_block: str) -> str:
    return f"bananaflow-{limits_block}"


@dataclass(frozen=True)
class WorkerGuard:
    """The limits one run may use, and the slot it holds while it generates."""

    limits: LimitSettings
    name: str | None = None  # the global concurrency limit, when the block asks for one
    split: bool = False  # whether ``limits`` is this run's share (no shared backend)

    def hold(self) -> ContextManager[None]:
        return _slot(self.name) if self.name else nullcontext()


def worker_guard(limits_block: str, limits: LimitSettings, environ: dict[str, str] | None = None) -> WorkerGuard:
    """The guard a run on ``limits_block`` runs under (none when the block has no ``worker_slots``)."""
    if not limits.worker_slots:
        return WorkerGuard(limits)
    name = guard_name(limits_block)
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:  # the block is the truth: follow its slot count
        client.upsert_global_concurrency_limit_by_name(name, limits.worker_slots)
    shared = bool(((os.environ if environ is None else environ).get(REDIS_URL_ENV) or "").strip())
    return WorkerGuard(limits if shared else limits.split(limits.worker_slots), name=name, split=not shared)


@contextmanager
def _slot(name: str) -> Iterator[None]:
    from prefect.concurrency.sync import concurrency

    with concurrency(name, occupy=1, timeout_seconds=SLOT_WAIT_S, strict=True):
        yield
