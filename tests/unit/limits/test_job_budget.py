"""A budget is the job's, not the process's: shards, retries and other runs of the job draw on
one account, here in a real Redis server (production's backend when BANANAFLOW_REDIS_URL is
set) and in a store with conditional writes (the bucket, when it is not)."""
from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from bananaflow.limits.accounts import S3Account, usd
from bananaflow.limits.budget import DAILY_BUDGET, MAX_COST, Budget
from bananaflow.limits.job_budget import budget_keys, budget_report_fields, open_budget
from tests.unit.limits.test_meters import REDIS_URL, _redis_or_skip

pytestmark = pytest.mark.e2e  # a real Redis server

WORST = 0.25


@pytest.fixture
def redis_env() -> dict[str, str]:
    _redis_or_skip()
    return {"BANANAFLOW_REDIS_URL": REDIS_URL, "BANANAFLOW_REDIS_NAMESPACE": f"bftest-{uuid.uuid4().hex[:8]}"}


def _keys(catalog: str = "sha256:abc", prefix: str = "shop"):
    return budget_keys("bucket", prefix, catalog, "{}")


def _race(budgets: list[Budget], threads_each: int, bill) -> list[float]:  # noqa: ANN001
    """Every budget (a shard) sends from ``threads_each`` threads as the dispatcher does: a refused
    call waits while the calls in flight may still make room, and gives up when they cannot."""
    billed: list[float] = []
    lock = threading.Lock()

    def worker(budget: Budget) -> None:
        while True:
            if not budget.reserve(WORST):
                if not budget.fits_once_settled(WORST):
                    return
                time.sleep(0.002)
                continue
            time.sleep(random.uniform(0, 0.004))
            cost = bill()
            budget.settle(WORST, cost)
            with lock:
                billed.append(cost)

    pool = [threading.Thread(target=worker, args=(b,)) for b in budgets for _ in range(threads_each)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return billed


def test_three_shards_on_one_redis_account_stay_within_one_cap(redis_env):
    shards = [open_budget(_keys(), max_cost_usd=2.0, daily_budget_usd=None, store=None, environ=redis_env)
              for _ in range(3)]
    billed = _race([b for b in shards if b], threads_each=4, bill=lambda: WORST * 0.8)
    # 2.0 at a worst case of 0.25 a call: 8 reservations fit, each settled at 0.20, which
    # frees room for one more (9 x 0.20 = 1.80, and 0.20 left is less than a worst case);
    # separate budgets per shard would have made 27
    assert len(billed) == 9
    assert budget_report_fields(shards[0])["work_spent_usd"] == pytest.approx(1.8)  # read back from Redis


def test_a_retry_gets_what_the_parent_left_and_more_only_with_a_larger_cap(redis_env):
    parent = open_budget(_keys(), max_cost_usd=1.0, daily_budget_usd=None, store=None, environ=redis_env)
    assert parent is not None
    assert len(_race([parent], 2, bill=lambda: WORST)) == 4
    retry = open_budget(_keys(), max_cost_usd=1.0, daily_budget_usd=None, store=None, environ=redis_env)
    assert retry is not None and not retry.can_afford(WORST) and not retry.reserve(WORST)
    assert "the job's budget of $1.00 (--max-cost)" in retry.describe_refusal()
    raised = open_budget(_keys(), max_cost_usd=1.5, daily_budget_usd=None, store=None, environ=redis_env)
    assert raised is not None and len(_race([raised], 2, bill=lambda: WORST)) == 2  # the 0.50 difference
    other_catalog = open_budget(_keys("sha256:new"), max_cost_usd=1.0, daily_budget_usd=None, store=None,
                                environ=redis_env)
    assert other_catalog is not None and other_catalog.reserve(WORST), "changed catalog: new work, its own cap"


def test_the_daily_budget_spans_every_run_of_the_job_and_renews_the_next_day(redis_env):
    now = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)
    runs = [open_budget(_keys(catalog), max_cost_usd=10.0, daily_budget_usd=1.0, store=None, environ=redis_env, now=now)
            for catalog in ("sha256:a", "sha256:b", "sha256:c")]  # three different works of one job
    billed = _race([b for b in runs if b], 2, bill=lambda: WORST)
    assert sum(billed) == pytest.approx(1.0)
    assert runs[0] is not None
    assert runs[0].describe_refusal() == "today's budget of $1.00 (--daily-budget)"
    report = budget_report_fields(runs[0])
    assert (report["spent_today_usd"], report["left_today_usd"], report["shared_through"]) == (1.0, 0.0, "redis")
    elsewhere = open_budget(_keys(prefix="other-job"), max_cost_usd=None, daily_budget_usd=1.0, store=None,
                            environ=redis_env, now=now)
    assert elsewhere is not None and elsewhere.reserve(WORST), "another prefix is another job"
    tomorrow = open_budget(_keys("sha256:a"), max_cost_usd=10.0, daily_budget_usd=1.0, store=None, environ=redis_env,
                           now=now + timedelta(hours=2))
    assert tomorrow is not None and tomorrow.reserve(WORST)


def test_worst_case_spend_passes_the_cap_by_at_most_the_reservations_in_flight_when_it_is_reached(redis_env):
    """Answers billed up to twice their worst case (a wrong price table): each shard stops at
    its first overshoot, and the account's total stays within the cap plus what was reserved
    by the calls in flight at the last reservation the cap let through."""
    shards = [open_budget(_keys(), max_cost_usd=3.0, daily_budget_usd=None, store=None, environ=redis_env)
              for _ in range(3)]
    book = threading.Lock()
    in_flight: dict[int, float] = {}
    at_last_grant = [0.0]

    def worker(budget: Budget, n: int) -> None:
        while True:
            with book:  # the bookkeeping sees the reservation and the calls in flight at once
                if not budget.reserve(WORST):
                    return
                in_flight[n] = WORST
                at_last_grant[0] = sum(in_flight.values())
            time.sleep(random.uniform(0, 0.004))
            with book:
                budget.settle(WORST, random.uniform(0.5, 2.0) * WORST)
                del in_flight[n]

    pool = [threading.Thread(target=worker, args=(b, i * 10 + j)) for i, b in enumerate(shards) if b for j in range(4)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    spent = usd(shards[0].account(MAX_COST).state().spent)  # type: ignore[union-attr]
    assert any(b.stopped for b in shards if b), "some answer was billed above its worst case"
    assert spent <= 3.0 + at_last_grant[0] + 1e-6
    assert shards[0].account(MAX_COST).state().reserved == 0  # type: ignore[union-attr]


class _ConditionalMemory:
    """A bucket's conditional create (If-None-Match: *), in memory: for the account's log logic."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put_image(self, key, data, content_type, metadata=None, *, if_absent=False):  # noqa: ANN001, ANN201
        with self._lock:
            if if_absent and key in self.objects:
                return False
            self.objects[key] = data
            return True

    def get_bytes(self, key: str) -> bytes:
        return self.objects[key]

    def exists(self, key: str) -> bool:
        return key in self.objects


def test_accounts_in_a_bucket_share_one_cap_through_conditional_writes():
    store = _ConditionalMemory()
    shards = [Budget(accounts=[S3Account(store, "shop/budgets/work-x", MAX_COST, 2.0)]) for _ in range(3)]
    billed = _race(shards, threads_each=4, bill=lambda: WORST * 0.8)
    assert len(billed) == 9
    late = S3Account(store, "shop/budgets/work-x", MAX_COST, 2.0)  # a retry: finds the newest entry
    assert usd(late.state().spent) == pytest.approx(1.8) and late.state().reserved == 0
    assert not late.reserve(WORST)


def test_without_redis_the_accounts_live_under_the_jobs_prefix():
    store = _ConditionalMemory()
    budget = open_budget(_keys(), max_cost_usd=1.0, daily_budget_usd=2.0, store=store, environ={},
                         now=datetime(2026, 12, 6, tzinfo=UTC))
    assert budget is not None and budget.reserve(WORST)
    assert {k.rsplit("/", 1)[0] for k in store.objects} == {f"shop/budgets/work-{_keys().work}",
                                                            "shop/budgets/day-2026-12-06"}
    assert [a.label for a in budget.accounts] == [MAX_COST, DAILY_BUDGET]
