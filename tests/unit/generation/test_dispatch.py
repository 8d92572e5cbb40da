"""Fallback, circuit breaking, daily-quota deferral and the budget, through the item
pipeline against the real simulator (HTTP on 127.0.0.1) and an in-memory store."""
import asyncio

import pytest

from bananaflow.generation.pipeline import ItemProcessor
from bananaflow.generation.retry import RetryPolicy
from bananaflow.limits.admission import Admission, Route, endpoint_label
from bananaflow.limits.breaker import CircuitBreaker
from bananaflow.limits.budget import Budget, worst_case_cost_usd
from bananaflow.limits.controller import RateController
from bananaflow.limits.settings import LimitSettings
from bananaflow.planning.work import WorkItem
from bananaflow.providers import make_provider
from bananaflow.providers.models import get_model
from bananaflow.providers.settings import ProviderSettings
from bananaflow.reports.summary import summarize
from bananaflow.secrets import Secret
from bananaflow.testing.memory_store import MemoryStore
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer

PRO, FLASH = "gemini-3-pro-image", "gemini-3.1-flash-image"
FAST = RetryPolicy(max_attempts=3, initial_wait=0.01, max_wait=0.05, deadline_s=30)


def items(n: int, model: str = PRO, variant: str = "main") -> list[WorkItem]:
    return [
        WorkItem(i, f"SKU-{i}", variant, f"product photo of mug {i}", model, "1:1", "1K", f"p/SKU-{i}/{variant}-d{i}", "0" * 64)
        for i in range(n)
    ]


def run(sim: SimulatorServer, work: list[WorkItem], admission: Admission, *, extra_sims=()) -> list:
    def settings(s: SimulatorServer) -> ProviderSettings:
        return ProviderSettings("gemini", s.base_url, Secret("FAKE-TEST-dispatch-0123456789abcdefghij"), "header", PRO)

    async def main():
        provider = make_provider(settings(sim))
        fallbacks = [make_provider(settings(s)) for s in extra_sims]
        try:
            proc = ItemProcessor(provider, MemoryStore(), admission or RateController(8), FAST, run_id="r1",
                                 fallback_providers=fallbacks)
            return await proc.process_all(work)
        finally:
            for p in (provider, *fallbacks):
                await p.aclose()

    return asyncio.run(main())


def test_no_quota_for_pro_falls_back_to_flash_and_the_manifest_says_so():
    with SimulatorServer(SimulatorConfig(quota_zero_models=(PRO,))) as sim:
        admission = Admission(LimitSettings(max_in_flight=4), fallback=[FLASH])
        rows = run(sim, items(6), admission)
        assert {r.status for r in rows} == {"succeeded"}
        assert {r.model for r in rows} == {FLASH}
        assert {r.endpoint for r in rows} == {endpoint_label("gemini", sim.base_url)}
        log = sim.request_log()
        # Pro answered "limit 0" once, was parked, and no further request went to it
        assert sum(1 for r in log if r["model"] == PRO) <= 4  # at most the first in-flight wave
        assert sum(1 for r in log if r["model"] == FLASH) == 6


def test_a_variant_that_forbids_fallback_is_deferred_instead():
    with SimulatorServer(SimulatorConfig(quota_zero_models=(PRO,))) as sim:
        admission = Admission(LimitSettings(max_in_flight=1), fallback=[FLASH], no_fallback_variants=["hero-4k"])
        rows = run(sim, items(3, variant="hero-4k"), admission)
        assert {r.status for r in rows} == {"deferred"}
        assert {r.model for r in rows} == {PRO}
        assert sim.stats()["requests_total"] == 1  # parked after the first answer
        assert [r.attempts for r in rows].count(0) == 2  # the others were never sent


def test_relay_down_falls_back_to_the_official_endpoint():
    with SimulatorServer(SimulatorConfig(rate_503=1.0)) as relay, SimulatorServer(SimulatorConfig()) as official:
        official_label = endpoint_label("gemini", official.base_url)
        admission = Admission(LimitSettings(max_in_flight=2), fallback=[Route(official_label, PRO)],
                              breaker_threshold=3, breaker_open_s=60)
        rows = run(relay, items(8), admission, extra_sims=[official])
        assert {r.status for r in rows} == {"succeeded"}
        assert {r.endpoint for r in rows} == {official_label}
        # the breaker opened on the relay: far fewer than 8 items x 3 attempts went there
        assert relay.stats()["requests_total"] <= 3 + 2  # threshold + what was already in flight
        assert admission.report()["breaker_opened"]


def test_daily_quota_defers_the_rest_without_attempts_and_the_summary_names_the_reset():
    with SimulatorServer(SimulatorConfig(requests_per_day=3)) as sim:
        admission = Admission(LimitSettings(max_in_flight=1))
        rows = run(sim, items(7), admission)
        statuses = [r.status for r in rows]
        assert statuses.count("succeeded") == 3 and statuses.count("deferred") == 4
        deferred = [r for r in rows if r.status == "deferred"]
        assert sum(r.attempts for r in deferred) <= 1  # only the one that met the per-day 429
        assert sim.stats()["requests_total"] == 4
        summary = summarize(rows, run_id="r1", rejected=0, wall_s=1.0, bucket="b", prefix="p")
        assert summary.quota_resets_at is not None
        assert "quota" in summary.to_markdown() and summary.quota_resets_at in summary.to_markdown()


def test_budget_stops_admitting_at_the_cap_and_defers_the_rest():
    worst = worst_case_cost_usd(get_model(PRO), "1K")
    with SimulatorServer(SimulatorConfig()) as sim:
        admission = Admission(LimitSettings(max_in_flight=1), max_cost_usd=worst * 3.5)
        rows = run(sim, items(10), admission)
        made = [r for r in rows if r.status == "succeeded"]
        deferred = [r for r in rows if r.status == "deferred"]
        assert len(made) + len(deferred) == 10
        assert len(made) >= 3  # real costs are below the worst case, so settled room is reused
        spent = sum(r.cost_usd for r in made)
        assert spent + worst > worst * 3.5, "it deferred only what could no longer fit"
        assert sum(r.cost_usd for r in made) <= worst * 3.5
        assert all(r.error_class == "BudgetExhausted" and r.attempts == 0 for r in deferred)
        assert sim.stats()["requests_total"] == len(made)


def test_budget_reservations_never_overshoot_under_concurrency():
    budget = Budget(1.0)
    assert budget.reserve(0.4) and budget.reserve(0.4)
    assert not budget.reserve(0.4)
    budget.settle(0.4, 0.1)
    assert budget.reserve(0.4)
    assert budget.spent_usd == pytest.approx(0.1) and budget.reserved_usd == pytest.approx(0.8)


def test_a_reservation_in_flight_makes_others_wait_not_give_up():
    budget = Budget(1.0)
    assert budget.reserve(0.6)  # a call in flight holds its worst case
    assert not budget.can_afford(0.6) and budget.fits_once_settled(0.6)  # wait: it will settle lower
    budget.settle(0.6, 0.3)
    assert budget.can_afford(0.6) and budget.reserve(0.6)
    budget.settle(0.6, 0.6)
    assert not budget.fits_once_settled(0.6)  # 0.9 is spent for real: defer


def test_budget_with_calls_in_flight_defers_only_what_cannot_fit():
    """Four in flight at once: items crowded out by others' open worst cases wait for them
    to settle instead of being deferred while real room is left."""
    worst = worst_case_cost_usd(get_model(PRO), "1K")
    cap = worst * 3.5
    with SimulatorServer(SimulatorConfig(latency_s=(0.05, 0.1))) as sim:
        rows = run(sim, items(12), Admission(LimitSettings(max_in_flight=4), max_cost_usd=cap))
    made = [r for r in rows if r.status == "succeeded"]
    spent = sum(r.cost_usd for r in made)
    assert spent <= cap and spent + worst > cap
    assert len(made) + sum(r.status == "deferred" for r in rows) == 12


def test_breaker_opens_half_opens_and_closes():
    t = [0.0]
    b = CircuitBreaker(failure_threshold=2, open_for_s=10, clock=lambda: t[0])
    assert b.state == "closed" and b.allow()
    b.record_failure()
    b.record_failure()
    assert b.state == "open" and not b.allow()
    t[0] = 10.0
    assert b.state == "half_open"
    assert b.allow() and not b.allow()  # one probe at a time
    b.record_failure()
    assert b.state == "open"
    t[0] = 20.0
    assert b.allow()
    b.record_success()
    assert b.state == "closed" and b.allow() and b.allow()
    assert b.opened == 2


def test_adaptive_rate_is_learned_from_429s_reported_and_kept_for_the_next_run(tmp_path):
    state = tmp_path / "learned.json"
    throttled = SimulatorConfig(latency_s=(0.01, 0.02), script={"mug": ["429", "429", "429"]}, script_retry_delay=0.05)
    with SimulatorServer(throttled) as sim:
        limits = LimitSettings(max_in_flight=4, adaptive=True, adaptive_start_rpm=600)
        admission = Admission(limits, learned_limits_file=str(state))
        rows = run(sim, items(40), admission)
        assert {r.status for r in rows} == {"succeeded"}
        learned = admission.learned_limits()
        (scope, rpm), = learned.items()
        assert rpm < 560  # cut by the 429s (once: they came within one hold period), then regrown a little
        admission.keep_learned_limits()
    again = Admission(limits, learned_limits_file=str(state))
    route = Route(scope.rsplit("/", 1)[0], PRO)
    assert again.controller(route).adaptive.limit == pytest.approx(rpm, abs=0.1)


def test_unmetered_adaptive_start_learns_from_the_first_429_and_the_next_run_starts_there(tmp_path):
    state = tmp_path / "learned.json"
    throttled = SimulatorConfig(latency_s=(0.01, 0.02), script={"mug": ["ok"] * 8 + ["429"]}, script_retry_delay=0.05)
    with SimulatorServer(throttled) as sim:
        limits = LimitSettings(max_in_flight=4, adaptive=True)
        admission = Admission(limits, learned_limits_file=str(state))
        rows = run(sim, items(12), admission)
        assert {r.status for r in rows} == {"succeeded"}
        (scope, rpm), = admission.learned_limits().items()  # metered since the 429
        admission.keep_learned_limits()
    again = Admission(limits, learned_limits_file=str(state))
    adaptive = again.controller(Route(scope.rsplit("/", 1)[0], PRO)).adaptive
    assert adaptive.limit == pytest.approx(rpm, abs=0.1)
    assert not adaptive.learned  # used as found; saved again only after a push-back of its own


def test_a_per_day_429_parks_the_model_and_teaches_the_adaptive_rate_nothing(tmp_path):
    state = tmp_path / "learned.json"
    with SimulatorServer(SimulatorConfig(latency_s=(0.01, 0.02), script={"mug": ["429_day"]})) as sim:
        admission = Admission(LimitSettings(max_in_flight=1, adaptive=True), learned_limits_file=str(state))
        rows = run(sim, items(3), admission)
        admission.keep_learned_limits()
        assert {r.status for r in rows} == {"deferred"}
        assert sim.stats()["requests_total"] == 1  # parked: the rest was not sent
    assert admission.learned_limits() == {}  # still unmetered: a used-up day is not a per-minute limit
    assert not state.exists()


def test_endpoint_label_never_carries_credentials():
    assert endpoint_label("openai", "https://user:s3cret@relay.example:8443/v1?key=abc") == "openai:relay.example:8443"
    assert endpoint_label("gemini", "https://generativelanguage.googleapis.com") == "gemini:generativelanguage.googleapis.com"
