"""Sending one item: along its route chain, under each route's controller, breaker and the budget.

For each route of the item's chain (primary first, then the fallbacks the variant allows):
skip it if its scope is parked for the day or its breaker is open; otherwise send with
retries under its rate controller. The next route is taken when a route ends in overload,
server errors, no answer, an open breaker or a parked daily quota — the failures another
model or endpoint may not share. Errors about the request itself (400, safety blocks) are
final: another model would refuse the same prompt.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from bananaflow.errors import (
    BananaflowError,
    BudgetExhausted,
    CircuitOpen,
    Overloaded,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    ServerError,
    TransportError,
)
from bananaflow.generation.retry import RetryPolicy, call_with_retries
from bananaflow.limits.admission import Admission, Route
from bananaflow.limits.budget import Budget, worst_case_cost_usd
from bananaflow.limits.meters import Demand
from bananaflow.providers.base import GeneratedImage, ImageProvider, ImageRequest
from bananaflow.providers.models import get_model
from bananaflow.providers.quota_day import next_quota_reset

log = logging.getLogger("bananaflow.generation.dispatch")

#: How often an item that the open reservations crowd out looks again at the budget.
BUDGET_POLL_S = 0.05

#: Final errors of a route after which the next route is worth trying.
FALLBACK_ON = (ServerError, TransportError, QuotaExhausted, CircuitOpen)


@dataclass
class Dispatched:
    """A generated image and how it was made."""

    image: GeneratedImage
    attempts: int
    route: Route
    first_sent_at: float


class Dispatcher:
    """Sends items through one task's providers (``{endpoint label: provider}``, primary first)."""

    def __init__(self, providers: Mapping[str, ImageProvider], admission: Admission, policy: RetryPolicy) -> None:
        if not providers:
            raise ValueError("at least one provider is needed")
        self.providers = dict(providers)
        self.primary = next(iter(self.providers))
        self.admission = admission
        self.policy = policy

    async def generate(self, request: ImageRequest, variant: str) -> Dispatched:
        """Generate ``request`` along its chain; raises the last route's error (with
        ``attempts`` = requests sent on all routes) if none made the image."""
        routes = [r for r in self.admission.chain(variant, request.model, self.primary) if r.endpoint in self.providers]
        sent = 0
        last: BananaflowError | None = None
        for route in routes:
            controller = self.admission.controller(route)
            until = controller.parked_until()
            if until is not None:
                last = controller.parked_error(until.timestamp())
                continue
            if self.admission.breaker(route).state == "open":
                last = CircuitOpen(f"circuit breaker open for {route.scope} after repeated server errors")
                continue
            counter = [0]
            try:
                image, first = await self._on_route(route, request, counter)
                return Dispatched(image, sent + counter[0], route, first)
            except FALLBACK_ON as exc:
                sent += counter[0]
                last = exc
            except BananaflowError as exc:
                exc.attempts = sent + counter[0]
                raise
        assert last is not None
        last.attempts = sent
        raise last

    async def _on_route(self, route: Route, base: ImageRequest, sent: list[int]) -> tuple[GeneratedImage, float]:
        provider = self.providers[route.endpoint]
        controller = self.admission.controller(route)
        breaker = self.admission.breaker(route)
        budget = self.admission.budget
        request = replace(base, model=route.model)
        worst = worst_case_cost_usd(get_model(route.model), request.image_size)
        demand = Demand(images=1, cost_usd=worst)
        first_sent: list[float] = []
        spent = [0.0]  # billed by this item's earlier attempts on this route (no-image answers)

        async def attempt() -> GeneratedImage:
            while budget is not None and (budget.stopped or not budget.can_afford(worst)):
                if budget.stopped or not budget.fits_once_settled(worst):  # no answer will make room
                    raise _budget_error(budget)
                await asyncio.sleep(BUDGET_POLL_S)  # calls in flight hold worst cases; they settle lower
            async with controller.slot(demand) as lease:
                if not breaker.allow():  # checked at the last moment: it may have opened while we queued
                    raise CircuitOpen(f"circuit breaker open for {route.scope} after repeated server errors")
                if budget is not None and not budget.reserve(worst):
                    raise _budget_error(budget)
                billed = worst  # until the answer says otherwise: a timeout may still be billed
                sent[0] += 1
                controller.record_sent()
                if not first_sent:
                    first_sent.append(time.monotonic())
                try:
                    image = await provider.generate(request)
                except RateLimited as exc:
                    billed = 0.0
                    controller.cooldown(exc.retry_after)
                    controller.record_throttle("429")
                    raise
                except QuotaExhausted as exc:
                    billed = 0.0
                    controller.park(exc.reset_at or next_quota_reset(time.time()))
                    raise
                except (ServerError, TransportError) as exc:
                    if not isinstance(exc, TransportError):
                        billed = 0.0
                    if isinstance(exc, Overloaded):
                        controller.record_throttle("503")
                    breaker.record_failure()
                    raise
                except ProviderError as exc:
                    # refused (400...): nothing billed; blocked or image-less 200s bill their
                    # prompt and thinking tokens, priced by the provider from its usage
                    billed = exc.cost_usd
                    spent[0] += billed
                    exc.cost_usd = spent[0]  # the item's row shows all it cost, earlier attempts too
                    breaker.record_success()
                    raise
                else:
                    billed = image.cost_usd
                    breaker.record_success()
                    controller.record_success()
                    if spent[0]:  # earlier image-less answers of this item were billed too
                        image = replace(image, cost_usd=round(image.cost_usd + spent[0], 6))
                    return image
                finally:
                    controller.settle(lease, demand, billed)
                    if budget is not None:
                        _settle(budget, worst, billed, request.model)

        image, _ = await call_with_retries(attempt, self.policy)
        return image, first_sent[0]


def _settle(budget: Budget, reserved: float, billed: float, model: str) -> None:
    """Settle one call; an answer billed above its reservation stops all further sending
    (``Budget.stopped``) and is reported once, here and in every deferred item's reason."""
    first = not budget.stopped
    budget.settle(reserved, billed)
    if budget.stopped and first:
        log.warning(
            "an answer from %s was billed $%.4f, above the $%.4f reserved for it: no more requests are sent "
            "so the run stays within --max-cost ($%.2f)", model, billed, reserved, budget.max_cost_usd,
        )


def _budget_error(budget: Budget) -> BudgetExhausted:
    if budget.stopped:
        return BudgetExhausted(
            f"not sent: an answer was billed ${budget.overshoot_usd:.4f} above its reserved worst case, so the run "
            f"stopped sending to stay within its budget of ${budget.max_cost_usd:.2f} (--max-cost); "
            "run again to make the rest"
        )
    return BudgetExhausted(
        f"not sent: the run's budget of ${budget.max_cost_usd:.2f} (--max-cost) is committed; "
        "run again (with a new budget) to make the rest"
    )
