"""Sending one item: along its route chain, under each route's controller, breaker and the budget.

For each route of the item's chain (primary first, then the fallbacks the variant allows):
skip it if its scope is parked for the day or its breaker is open; otherwise send with
retries under its rate controller. The next route is taken when a route ends in overload,
server errors, no answer, an open breaker or a parked daily quota — the failures another
model or endpoint may not share. Errors about the request itself (400, safety blocks) are
final: another model would refuse the same prompt.

What each classified error means for the rate controller, the breaker and the budget is one
table (``ERROR_EFFECTS``), not a branch per class; what happened to the item is one value,
the ``ItemOutcome`` ``Dispatcher.generate`` returns whether or not an image came back.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum

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
from bananaflow.landing.outcome import Charge, ItemOutcome, billed_charge, utc_now
from bananaflow.limits.admission import Admission, Route
from bananaflow.limits.breaker import CircuitBreaker
from bananaflow.limits.budget import Budget, worst_case_cost_usd
from bananaflow.limits.controller import RateController
from bananaflow.limits.meters import Demand
from bananaflow.providers.base import GeneratedImage, ImageProvider, ImageRequest
from bananaflow.providers.models import get_model
from bananaflow.providers.quota_day import next_quota_reset

__all__ = ["BUDGET_POLL_S", "ERROR_EFFECTS", "Billed", "Dispatcher", "ErrorEffect", "effect_of"]

log = logging.getLogger("bananaflow.generation.dispatch")

#: How often an item that the open reservations crowd out looks again at the budget.
BUDGET_POLL_S = 0.05


class Billed(Enum):
    """What the budget settles a failed call at."""

    NOTHING = "nothing"  # refused before any work: not billed
    WORST_CASE = "worst case"  # no answer: it may still have been billed, so its reservation stands
    AS_REPORTED = "as reported"  # an answer that priced its own usage (blocked, image-less 200, 400)


@dataclass(frozen=True)
class ErrorEffect:
    """What one class of failed call means beyond the item itself."""

    billed: Billed
    #: the route's breaker counts it as a ``"failure"``, a ``"success"`` (the endpoint
    #: answered properly, the request was wrong) or not at all (``""``)
    breaker: str = ""
    #: the controller's push-back counter it feeds (``"429"``, ``"503"``), for AIMD
    throttle: str = ""
    #: the server's ``retry_after`` pauses every request of the scope
    cool_down: bool = False
    #: the scope is parked until the daily quota resets
    park: bool = False
    #: the next route of the chain is worth trying after this route ends with it
    fall_back: bool = False

    def apply(self, exc: ProviderError, controller: RateController, breaker: CircuitBreaker) -> None:
        if self.cool_down and isinstance(exc, RateLimited):
            controller.cooldown(exc.retry_after)
        if self.park:
            reset_at = exc.reset_at if isinstance(exc, QuotaExhausted) else None
            controller.park(reset_at or next_quota_reset(time.time()))
        if self.throttle:
            controller.record_throttle(self.throttle)
        if self.breaker == "failure":
            breaker.record_failure()
        elif self.breaker == "success":
            breaker.record_success()


#: The one table from error class to its effects, most specific class first: an error
#: takes the first row it is an instance of.
ERROR_EFFECTS: tuple[tuple[type[ProviderError], ErrorEffect], ...] = (
    (RateLimited, ErrorEffect(Billed.NOTHING, throttle="429", cool_down=True)),
    (QuotaExhausted, ErrorEffect(Billed.NOTHING, park=True, fall_back=True)),
    (Overloaded, ErrorEffect(Billed.NOTHING, breaker="failure", throttle="503", fall_back=True)),
    (ServerError, ErrorEffect(Billed.NOTHING, breaker="failure", fall_back=True)),
    (TransportError, ErrorEffect(Billed.WORST_CASE, breaker="failure", fall_back=True)),
    (CircuitOpen, ErrorEffect(Billed.NOTHING, fall_back=True)),
    (ProviderError, ErrorEffect(Billed.AS_REPORTED, breaker="success")),
)


def effect_of(exc: BaseException) -> ErrorEffect | None:
    """The effects row of ``exc``; None for errors that are not about a call (budget, bugs)."""
    for cls, effect in ERROR_EFFECTS:
        if isinstance(exc, cls):
            return effect
    return None


@dataclass
class _Sending:
    """One item's sends so far, across the routes of its chain."""

    sent: int = 0
    first_sent_at: float | None = None
    charges: list[Charge] = field(default_factory=list)

    def record_send(self) -> None:
        self.sent += 1
        if self.first_sent_at is None:
            self.first_sent_at = time.monotonic()

    def record_billed(self, exc: ProviderError) -> None:
        """A failed answer that was billed all the same: the item's row shows it."""
        if (charge := billed_charge(exc)) is not None:
            self.charges.append(charge)


class Dispatcher:
    """Sends items through one task's providers (``{endpoint label: provider}``, primary first)."""

    def __init__(self, providers: Mapping[str, ImageProvider], admission: Admission, policy: RetryPolicy) -> None:
        if not providers:
            raise ValueError("at least one provider is needed")
        self.providers = dict(providers)
        self.primary = next(iter(self.providers))
        self.admission = admission
        self.policy = policy

    async def generate(
        self, request: ImageRequest, variant: str, *, started_at: datetime | None = None, t0: float | None = None
    ) -> ItemOutcome:
        """Generate ``request`` along its chain. The outcome holds the image, or the last
        route's classified error; either way every request sent and every answer billed."""
        started_at = started_at or utc_now()
        t0 = time.monotonic() if t0 is None else t0
        routes = [r for r in self.admission.chain(variant, request.model, self.primary) if r.endpoint in self.providers]
        sending = _Sending()
        last: BaseException | None = None
        for route in routes:
            skipped = self._unavailable(route)
            if skipped is not None:
                last = skipped
                continue
            try:
                image = await self._on_route(route, request, sending)
            except BananaflowError as exc:
                last = exc
                effect = effect_of(exc)
                if effect is not None and effect.fall_back:
                    continue
                break
            return ItemOutcome(
                status="succeeded",
                started_at=started_at,
                attempts=sending.sent,
                charges=(*sending.charges, Charge("image", image.cost_usd, image.usage)),
                image=image,
                model=image.model or route.model,
                endpoint=route.endpoint,
                first_sent_at=sending.first_sent_at,
            )
        if last is None:
            last = CircuitOpen(f"no route of variant {variant!r} can send to {request.model}")
        return ItemOutcome.failure(last, started_at=started_at, t0=t0, attempts=sending.sent,
                                   charges=tuple(sending.charges))

    def _unavailable(self, route: Route) -> BananaflowError | None:
        """Why ``route`` is not tried at all: its scope is parked for the day, or its breaker is open."""
        controller = self.admission.controller(route)
        until = controller.parked_until()
        if until is not None:
            return controller.parked_error(until.timestamp())
        if self.admission.breaker(route).state == "open":
            return CircuitOpen(f"circuit breaker open for {route.scope} after repeated server errors")
        return None

    async def _on_route(self, route: Route, base: ImageRequest, sending: _Sending) -> GeneratedImage:
        provider = self.providers[route.endpoint]
        controller = self.admission.controller(route)
        breaker = self.admission.breaker(route)
        budget = self.admission.budget
        request = replace(base, model=route.model)
        worst = worst_case_cost_usd(get_model(route.model), request.image_size)
        demand = Demand(images=1, cost_usd=worst)

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
                billed = worst  # until the answer says otherwise: a call with no answer may still be billed
                sending.record_send()
                controller.record_sent()
                try:
                    image = await provider.generate(request)
                    billed = image.cost_usd
                except ProviderError as exc:
                    billed = _billed_for(exc, worst)
                    _effect(exc).apply(exc, controller, breaker)
                    sending.record_billed(exc)
                    raise
                finally:
                    controller.settle(lease, demand, billed)
                    if budget is not None:
                        _settle(budget, worst, billed, request.model)
                breaker.record_success()
                controller.record_success()
                return image

        image, _ = await call_with_retries(attempt, self.policy)
        return image


def _effect(exc: ProviderError) -> ErrorEffect:
    effect = effect_of(exc)
    assert effect is not None  # ProviderError, the table's last row, matches every provider error
    return effect


def _billed_for(exc: ProviderError, worst: float) -> float:
    billed = _effect(exc).billed
    if billed is Billed.WORST_CASE:
        return worst
    return exc.cost_usd if billed is Billed.AS_REPORTED else 0.0


def _settle(budget: Budget, reserved: float, billed: float, model: str) -> None:
    """Settle one call; an answer billed above its reservation stops all further sending
    (``Budget.stopped``) and is reported once, here and in every deferred item's reason."""
    first = not budget.stopped
    budget.settle(reserved, billed)
    if budget.stopped and first:
        log.warning(
            "an answer from %s was billed $%.4f, above the $%.4f reserved for it: no more requests are sent "
            "so the run stays within its budget ($%.2f)", model, billed, reserved, budget.max_cost_usd,
        )


def _budget_error(budget: Budget) -> BudgetExhausted:
    if budget.stopped:
        return BudgetExhausted(
            f"not sent: an answer was billed ${budget.overshoot_usd:.4f} above its reserved worst case, so the run "
            f"stopped sending to stay within its budget of ${budget.max_cost_usd:.2f} (--max-cost); "
            "run again to make the rest"
        )
    return BudgetExhausted(
        f"not sent: {budget.describe_refusal()} is committed; "
        "run again with a larger budget, or when the daily budget renews, to make the rest"
    )
