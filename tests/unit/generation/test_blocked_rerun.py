"""A blocked prompt is remembered beside its image key: the next run does not send (and
pay for) it again unless its prompt changed or ``retry_blocked`` asks. Blocked and
image-less answers are billed from their usage, in the row and in the budget alike."""
import asyncio

import pytest

from bananaflow.generation.pipeline import ItemProcessor
from bananaflow.generation.retry import RetryPolicy
from bananaflow.landing.blocked import blocked_key, find_block
from bananaflow.limits.admission import Admission
from bananaflow.limits.settings import LimitSettings
from bananaflow.planning.work import WorkItem
from bananaflow.providers import make_provider
from bananaflow.providers.settings import ProviderSettings
from bananaflow.reports.summary import summarize
from bananaflow.secrets import Secret
from bananaflow.testing.memory_store import MemoryStore
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer

PRO = "gemini-3-pro-image"
FAST = RetryPolicy(max_attempts=3, initial_wait=0.01, max_wait=0.05, deadline_s=30, no_image_max_attempts=2)


def item(prompt: str, stem: str = "p/SKU-1/main-d1", sha: str = "a" * 64) -> WorkItem:
    return WorkItem(1, "SKU-1", "main", prompt, PRO, "1:1", "1K", stem, sha)


def run(sim: SimulatorServer, store: MemoryStore, work: list[WorkItem], *, run_id: str, retry_blocked=False,
        admission: Admission | None = None):
    async def main():
        settings = ProviderSettings("gemini", sim.base_url, Secret("FAKE-TEST-blocked-0123456789abcdef"), "header", PRO)
        provider = make_provider(settings)
        try:
            proc = ItemProcessor(provider, store, admission or Admission(LimitSettings(max_in_flight=2)), FAST,
                                 run_id=run_id, retry_blocked=retry_blocked)
            return await proc.process_all(work)
        finally:
            await provider.aclose()

    return asyncio.run(main())


def test_a_blocked_prompt_is_not_sent_again_by_the_next_run():
    with SimulatorServer(SimulatorConfig(blocked_words=("forbidden",))) as sim:
        store = MemoryStore()
        [first] = run(sim, store, [item("a forbidden mug")], run_id="night-1")
        assert first.status == "blocked" and first.attempts == 1
        assert first.cost_usd > 0 and first.prompt_tokens > 0  # prompt + thinking are billed
        assert blocked_key("p/SKU-1/main-d1") in store.objects
        assert find_block(store, "p/SKU-1/main-d1").run_id == "night-1"
        summary = summarize([first], run_id="night-1", rejected=0, wall_s=1.0, bucket="b", prefix="p")
        assert summary.cost_usd == summary.cost_without_image_usd == pytest.approx(first.cost_usd, abs=1e-4)
        assert "for answers without an image" in summary.to_markdown()
        assert store.find_existing("p/SKU-1/main-d1") is None  # the marker is not taken for the image

        [second] = run(sim, store, [item("a forbidden mug")], run_id="night-2")
        assert sim.stats()["requests_total"] == 1  # nothing sent the second night
        assert second.status == "blocked" and second.attempts == 0 and second.cost_usd == 0
        assert "--retry-blocked" in second.error_message and "night-1" in second.error_message
        assert summarize([second], run_id="night-2", rejected=0, wall_s=1.0, bucket="b", prefix="p").ok  # exit 0


def test_a_changed_prompt_or_retry_blocked_sends_it_again():
    with SimulatorServer(SimulatorConfig(blocked_words=("forbidden",))) as sim:
        store = MemoryStore()
        run(sim, store, [item("a forbidden mug")], run_id="night-1")
        # the prompt changed: a new digest, a new key; the old marker does not apply
        [changed] = run(sim, store, [item("a plain mug", stem="p/SKU-1/main-d2")], run_id="night-2")
        assert changed.status == "succeeded"
        # the same prompt on purpose: sent, blocked again, marker refreshed
        [again] = run(sim, store, [item("a forbidden mug")], run_id="night-3", retry_blocked=True)
        assert again.status == "blocked" and again.attempts == 1
        assert find_block(store, "p/SKU-1/main-d1").run_id == "night-3"
        assert sim.stats()["requests_total"] == 3


def test_retry_blocked_that_succeeds_removes_nothing_it_needs():
    with SimulatorServer(SimulatorConfig(script={"mug": ["blocked", "ok"]})) as sim:
        store = MemoryStore()
        [first] = run(sim, store, [item("a mug")], run_id="n1")
        assert first.status == "blocked"
        [second] = run(sim, store, [item("a mug")], run_id="n2", retry_blocked=True)
        assert second.status == "succeeded"
        [third] = run(sim, store, [item("a mug")], run_id="n3")
        assert third.status == "skipped_exists"


def test_no_image_answers_are_billed_in_the_row_and_settled_in_the_budget():
    with SimulatorServer(SimulatorConfig(script={"mug": ["no_image", "ok"]})) as sim:
        admission = Admission(LimitSettings(max_in_flight=1), max_cost_usd=5.0)
        [row] = run(sim, MemoryStore(), [item("a mug")], run_id="r", admission=admission)
        assert row.status == "succeeded" and row.attempts == 2
        budget = admission.budget
        assert budget.reserved_usd == pytest.approx(0.0, abs=1e-9)
        # the row's cost is both answers; the budget settled the very same numbers
        assert budget.spent_usd == pytest.approx(row.cost_usd, abs=1e-6)
        assert row.cost_usd > 0.134  # the image plus the billed no-image answer


def test_capacity_is_an_overload_not_a_throttle_of_our_rate(monkeypatch):
    from bananaflow.limits.controller import RateController

    kinds: list[str] = []
    original = RateController.record_throttle
    monkeypatch.setattr(RateController, "record_throttle", lambda self, kind: (kinds.append(kind), original(self, kind)))
    with SimulatorServer(SimulatorConfig(script={"mug": ["429_capacity", "ok"]})) as sim:
        [row] = run(sim, MemoryStore(), [item("a mug")], run_id="r")
    assert row.status == "succeeded" and row.attempts == 2
    assert kinds == ["503"]  # never "429": adaptive mode keeps its learned rate


def test_a_daily_quota_named_only_in_the_prose_is_not_retried():
    with SimulatorServer(SimulatorConfig(script={"mug": ["429_per_day_text"] * 5})) as sim:
        [row] = run(sim, MemoryStore(), [item("a mug")], run_id="r")
        assert sim.stats()["requests_total"] == 1
    assert row.status == "deferred" and row.error_class == "QuotaExhausted"
    assert "resets at" in row.error_message and "retry in" not in row.error_message.lower()


class _DeletingStore(MemoryStore):
    def delete(self, key: str) -> None:
        with self._lock:
            self.objects.pop(key, None)
            self._sorted.remove(key)


def test_a_claim_left_beside_a_stored_image_is_removed_by_the_next_run():
    """An interrupted run uploaded the image but S3 refused its claim's release: the next
    run finds the image, reports it existing and drops the leftover claim (the image is safe)."""
    from bananaflow.landing.claims import KeyClaims, claim_key

    store = _DeletingStore()
    stem = "p/SKU-9/main-d9"
    store.put_image(stem + ".png", b"\x89PNG", "image/png", {})
    store.put_image(claim_key(stem), b"{}", "application/json", {})

    async def main():
        settings = ProviderSettings("gemini", "http://127.0.0.1:9", Secret("FAKE-TEST-claims-0123456789abcdef"), "header", PRO)
        provider = make_provider(settings)
        try:
            proc = ItemProcessor(provider, store, Admission(LimitSettings(max_in_flight=2)), FAST, run_id="night-2",
                                 claims=KeyClaims(store, "night-2", lease_s=60))
            return await proc.process_all([item("a mug", stem=stem)])
        finally:
            await provider.aclose()

    [row] = asyncio.run(main())
    assert row.status == "skipped_exists" and row.key == stem + ".png"
    assert claim_key(stem) not in store.objects
