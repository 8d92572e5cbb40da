"""What one run shares to decide whether, where and when each request is sent.

One ``Admission`` per run holds a rate controller per quota scope (endpoint + model), a
circuit breaker per scope, the fallback chain and the budget. The per-task ``Dispatcher``
(``bananaflow.generation.dispatch``) consults it around every call. Keeping this state in one object
that outlives tasks is what makes limits hold across all of a run's task threads.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, cast
from urllib.parse import urlsplit

from bananaflow.limits.adaptive import AdaptiveLimit, LearnedLimits
from bananaflow.limits.backends import LimitBackend, backend_from_env
from bananaflow.limits.breaker import CircuitBreaker
from bananaflow.limits.budget import MAX_COST, Budget
from bananaflow.limits.controller import RateController
from bananaflow.limits.job_budget import budget_report_fields
from bananaflow.limits.settings import LimitSettings


class BudgetReport(TypedDict, total=False):
    max_cost_usd: float
    spent_usd: float  # by this run
    overshoot_usd: float  # only when answers were billed above their reservation
    shared_through: str  # "redis", "s3" or "process": where the accounts live
    work_spent_usd: float  # by every run of the same work (shards, retries) so far, this one included
    daily_budget_usd: float
    spent_today_usd: float  # by every run of the job today
    left_today_usd: float


class LimitsReport(TypedDict, total=False):
    """What the limits did in a run, for its summary (``Admission.report``)."""

    learned_rpm: dict[str, float]
    breaker_opened: dict[str, int]
    parked_until: dict[str, str]  # ISO time, by scope
    throttled: dict[str, int]
    budget: BudgetReport


@dataclass(frozen=True)
class Route:
    """Where one request goes: an endpoint (``kind:host``) and a model id."""

    endpoint: str
    model: str

    @property
    def scope(self) -> str:
        """The quota scope: Google counts limits per project *and* model."""
        return f"{self.endpoint}/{self.model}"


def endpoint_label(kind: str, base_url: str) -> str:
    """``gemini:generativelanguage.googleapis.com`` — names an endpoint without secrets
    (never the user:password a relay URL may carry, nor its path or query)."""
    parts = urlsplit(base_url)
    host = parts.hostname or "unknown-host"
    return f"{kind}:{host}" + (f":{parts.port}" if parts.port else "")


#: Failures it takes to open the breaker of a route that has no fallback: never.
_NEVER_OPENS = 2**31


class Admission:
    """Rate controllers, breakers, fallback chain and budget of one run."""

    def __init__(
        self,
        limits: LimitSettings | None = None,
        *,
        backend: LimitBackend | None = None,
        fallback: Iterable[Route | str] = (),
        no_fallback_variants: Iterable[str] = (),
        max_cost_usd: float | None = None,
        budget: Budget | None = None,
        breaker_threshold: int = 5,
        breaker_open_s: float = 30.0,
        controller: RateController | None = None,
        learned_limits_file: str | None = None,
    ) -> None:
        self.limits = limits or LimitSettings()
        self._backend = backend
        self._shared_controller = controller
        self.fallback: tuple[Route | str, ...] = tuple(fallback)
        self.no_fallback_variants = frozenset(no_fallback_variants)
        self.budget = budget if budget is not None else Budget(max_cost_usd) if max_cost_usd else None
        # A breaker only helps when there is another route to take: with a single route, an
        # open breaker would fail items that the retry policy carries through a storm.
        self._breaker_args = (breaker_threshold if self.fallback else _NEVER_OPENS, breaker_open_s)
        self._lock = threading.Lock()
        self._controllers: dict[str, RateController] = {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._learned = LearnedLimits(Path(learned_limits_file)) if learned_limits_file else None

    @classmethod
    def for_controller(cls, controller: RateController) -> Admission:
        """Every scope shares ``controller``: the single-model, no-fallback case."""
        return cls(controller=controller)

    @property
    def backend(self) -> LimitBackend:
        with self._lock:
            if self._backend is None:
                self._backend = backend_from_env()
            return self._backend

    def controller(self, route: Route) -> RateController:
        if self._shared_controller is not None:
            return self._shared_controller
        backend = self.backend
        with self._lock:
            found = self._controllers.get(route.scope)
            if found is None:
                found = self._controllers[route.scope] = self._build_controller(route.scope, backend)
            return found

    def _build_controller(self, scope: str, backend: LimitBackend) -> RateController:
        lim = self.limits
        adaptive = None
        if lim.adaptive:
            learned = self._learned.get(scope) if self._learned else None
            if learned:
                adaptive = AdaptiveLimit.resume(learned)
            else:
                adaptive = AdaptiveLimit(lim.requests_per_minute or lim.adaptive_start_rpm)
        return RateController(
            lim.max_in_flight,
            lim.requests_per_minute,
            images_per_minute=lim.images_per_minute,
            requests_per_day=lim.requests_per_day,
            spend_per_10min_usd=lim.spend_per_10min_usd,
            scope=scope,
            backend=backend,
            adaptive=adaptive,
        )

    def breaker(self, route: Route) -> CircuitBreaker:
        with self._lock:
            found = self._breakers.get(route.scope)
            if found is None:
                found = self._breakers[route.scope] = CircuitBreaker(*self._breaker_args)
            return found

    def chain(self, variant: str, model: str, primary_endpoint: str) -> list[Route]:
        """The routes to try for one item, in order; just the first if the variant forbids fallback."""
        routes = [Route(primary_endpoint, model)]
        if variant in self.no_fallback_variants:
            return routes
        for entry in self.fallback:
            route = Route(primary_endpoint, entry) if isinstance(entry, str) else entry
            if route not in routes:
                routes.append(route)
        return routes

    def learned_limits(self) -> dict[str, float]:
        """Requests per minute learned by adaptive controllers, by scope."""
        with self._lock:
            limits = {s: c.adaptive.limit for s, c in self._controllers.items() if c.adaptive is not None}
        return {s: round(v, 1) for s, v in limits.items() if v is not None}  # None: not metered yet

    def keep_learned_limits(self) -> None:
        """Save learned limits for the next run (only ones the provider actually pushed back on)."""
        if self._learned is None:
            return
        with self._lock:
            learned = [(s, c.adaptive) for s, c in self._controllers.items() if c.adaptive is not None]
        for scope, adaptive in learned:
            limit = adaptive.limit
            if adaptive.learned and limit is not None:
                self._learned.save(scope, limit)

    def report(self) -> LimitsReport:
        """Facts for the run summary."""
        with self._lock:
            breakers = {s: b.opened for s, b in self._breakers.items() if b.opened}
            parked = {}
            throttled = {s: c.stats.throttled for s, c in self._controllers.items() if c.stats.throttled}
            for scope, ctl in self._controllers.items():
                until = ctl.parked_until()
                if until is not None:
                    parked[scope] = until.isoformat(timespec="minutes")
        out: LimitsReport = {
            "learned_rpm": self.learned_limits(),
            "breaker_opened": breakers,
            "parked_until": parked,
            "throttled": throttled,  # 429/503 answers that pushed back, per scope
        }
        if self.budget is not None:
            budget = cast(BudgetReport, {"spent_usd": round(self.budget.spent_usd, 4), **budget_report_fields(self.budget)})
            if self.budget.account(MAX_COST) is not None:
                budget["max_cost_usd"] = self.budget.max_cost_usd
            if self.budget.overshoots:  # answers billed above their reservation (sending stopped)
                budget["overshoot_usd"] = round(self.budget.overshoot_usd, 4)
            out["budget"] = budget
        return out


LEARNED_LIMITS_ENV = "BANANAFLOW_LEARNED_LIMITS"


def default_learned_limits_file() -> str:
    """Where adaptive mode keeps learned limits between runs (``BANANAFLOW_LEARNED_LIMITS``)."""
    import os

    return os.environ.get(LEARNED_LIMITS_ENV) or str(Path.home() / ".cache" / "bananaflow" / "learned-limits.json")


def admission_for_run(
    limits: LimitSettings,
    *,
    fallback_models: Iterable[str] = (),
    no_fallback_variants: Iterable[str] = (),
    max_cost_usd: float | None = None,
    budget: Budget | None = None,
) -> Admission:
    """The ``Admission`` of a catalog run. Limits are shared through Redis when
    ``BANANAFLOW_REDIS_URL`` is set, else kept in this process; adaptive runs start from
    (and keep) what earlier runs learned."""
    return Admission(
        limits,
        fallback=list(fallback_models),
        no_fallback_variants=no_fallback_variants,
        max_cost_usd=max_cost_usd,
        budget=budget,
        learned_limits_file=default_learned_limits_file() if limits.adaptive else None,
    )
