"""``--max-cost`` holds in batch mode: each item's batch worst case is reserved before it is
submitted; what does not fit is deferred (never submitted), and collection settles to the
real cost. On the simulator (127.0.0.1) and an in-memory store."""
from __future__ import annotations

import asyncio

import pytest

from bananaflow.batch.api import GeminiBatchAPI
from bananaflow.batch.runner import BatchRunner, PollPolicy
from bananaflow.generation.lander import ImageLander
from bananaflow.landing.manifest import ManifestRow
from bananaflow.limits.budget import Budget, batch_worst_case_cost_usd, worst_case_cost_usd
from bananaflow.planning.batch_sizing import BatchLimits
from bananaflow.planning.work import WorkItem
from bananaflow.providers.models import get_model
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import Secret
from bananaflow.testing.memory_store import MemoryStore
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer

PRO = "gemini-3-pro-image"
KEY = "FAKE-BATCH-budget-key-0123456789abcdefgh"


class _Store(MemoryStore):
    """``MemoryStore`` plus the small objects the batch ledger keeps."""

    prefix = "p"

    def __init__(self) -> None:
        super().__init__()
        self.blobs: dict[str, bytes] = {}

    def key(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts))

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self.blobs[key] = data

    def get_bytes(self, key: str) -> bytes:
        return self.blobs[key]

    def delete(self, key: str) -> None:
        self.blobs.pop(key, None)

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.blobs if k.startswith(prefix))


def items(n: int) -> list[WorkItem]:
    return [WorkItem(i + 2, f"SKU-{i}", "main", f"a teapot {i}", PRO, "1:1", "1K", f"p/SKU-{i}/main-{i:08x}", "0" * 64)
            for i in range(n)]


def run(sim: SimulatorServer, work: list[WorkItem], budget: Budget) -> list[ManifestRow]:
    settings = ProviderSettings(kind="gemini", base_url=sim.base_url, api_key=Secret(KEY), auth_style="header", model=PRO)
    store = _Store()

    async def go() -> list[ManifestRow]:
        api = GeminiBatchAPI(settings)
        try:
            runner = BatchRunner(api, store, run_id="r", lander=ImageLander(store, run_id="r", mode="batch"),
                                 limits=BatchLimits(max_items=4), poll=PollPolicy(initial_s=0.05, max_interval_s=0.1),
                                 budget=budget)
            plan = await runner.plan(work)
            rows: list[ManifestRow] = []
            submissions = [await runner.submit(group) for group in plan.new_groups]  # all before any result, as the flow
            for submission in submissions:
                rows += submission.rows
                if submission.job is not None:
                    rows += await runner.collect(submission.job, await runner.wait(submission.job))
            return rows
        finally:
            await api.aclose()

    return asyncio.run(go())


def test_batch_mode_reserves_before_submitting_and_defers_what_does_not_fit() -> None:
    spec = get_model(PRO)
    per_item = batch_worst_case_cost_usd(spec, "1K")
    assert per_item < worst_case_cost_usd(spec, "1K")  # batch prices
    budget = Budget(per_item * 5.5)  # room for 5 of 12
    with SimulatorServer(SimulatorConfig(api_key=KEY, batch_turnaround_s=0.1)) as sim:
        rows = run(sim, items(12), budget)
    made = [r for r in rows if r.status == "succeeded"]
    deferred = [r for r in rows if r.status == "deferred"]
    assert len(rows) == 12 and len(made) == 5 and len(deferred) == 7, [r.status for r in rows]
    assert all(r.error_class == "BudgetExhausted" and r.attempts == 0 for r in deferred)
    assert "--max-cost" in deferred[0].error_message
    assert budget.spent_usd == pytest.approx(sum(r.cost_usd for r in made))
    assert budget.spent_usd <= budget.max_cost_usd
    assert sim.batch_stats()["batches_created"] == 2  # 4 + 1 items: the 7 deferred were never submitted
    assert budget.reserved_usd == pytest.approx(0)  # every reservation settled to the real cost
