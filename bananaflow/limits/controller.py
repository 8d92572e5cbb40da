"""Admission control for one quota scope (endpoint + model).

Google's limits are per project and answer overflow with 429s that cost a request each, so
bananaflow meters itself *before* sending. A ``RateController`` is a list of meters
(``bananaflow.limits.meters``: requests and images per minute, in-flight cap, requests per day,
spend per rolling 10 minutes) kept by a backend (``bananaflow.limits.backends``: this
process, or Redis for many workers), plus a shared cooldown — one 429 carrying a delay
pauses every request on the scope instead of each coroutine discovering the limit on its own.

The controller is shared by the threads Prefect runs tasks on and by the coroutines inside
each task. Waiters queue in arrival order and only the head of the queue asks the backend,
so ten thousand queued items cost one poll at a time, not ten thousand.
"""
from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from bananaflow.errors import QuotaExhausted
from bananaflow.limits.adaptive import AdaptiveLimit
from bananaflow.limits.backends import InProcessBackend, LimitBackend, Verdict
from bananaflow.limits.meters import (
    DailyQuota,
    Demand,
    ImagesPerMinute,
    InFlightCap,
    Meter,
    RequestsPerMinute,
    SpendPerWindow,
)

#: Longest single sleep while waiting; a cooldown or park set by another worker is noticed this soon.
_MAX_SLEEP_S = 1.0
#: The requests-per-minute meter of an adaptive scope before its first push-back: it never
#: holds a request back, but logs each start, so once a limit is learned the requests of the
#: minute before count against it (the provider counted them too).
UNMETERED_RPM = 1e9


@dataclass
class ControllerStats:
    """What the controller did, for summaries, tests and the benchmark."""

    admitted: int = 0
    in_flight: int = 0
    max_in_flight_seen: int = 0
    cooldowns: int = 0
    waited_s: float = 0.0
    throttled: int = 0


class _FifoTurn:
    """One waiter at a time, in arrival order, across threads and event loops."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = False
        self._waiters: collections.deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = collections.deque()

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._busy:
                self._busy = True
                fut = None
            else:
                fut = loop.create_future()
                self._waiters.append((loop, fut))
        if fut is not None:
            try:
                await fut
            except asyncio.CancelledError:
                with self._lock:
                    handed = fut.done() and not fut.cancelled()
                    if not handed:
                        try:
                            self._waiters.remove((loop, fut))
                        except ValueError:
                            handed = True  # handed over between the cancel and this lock
                if handed:
                    self._next()
                raise
        try:
            yield
        finally:
            self._next()

    def _next(self) -> None:
        with self._lock:
            while self._waiters:
                loop, fut = self._waiters.popleft()
                if loop.is_closed():
                    continue
                loop.call_soon_threadsafe(_hand_over, fut)
                return
            self._busy = False


def _burst(burst: int | None, max_in_flight: int | None, rpm: float) -> int:
    """By default a cold start fills the in-flight cap at once instead of spacing the first
    requests; the sliding window still holds every 60 s to the limit."""
    if burst is not None:
        return max(1, burst)
    return max(1, min(max_in_flight or 1, int(rpm // 10) or 1))


def _hand_over(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
    # a cancelled waiter passes the turn on itself (see ``turn``)


class RateController:
    """Admits requests on one scope only when every meter allows it.

    ``max_in_flight``/``requests_per_minute``/... build the usual meters; ``meters`` adds
    any others. ``adaptive`` (an ``AdaptiveLimit``) replaces a fixed requests-per-minute
    figure with one learned from the provider's 429/503 answers.
    """

    def __init__(
        self,
        max_in_flight: int | None = None,
        requests_per_minute: float | None = None,
        *,
        burst: int | None = None,
        images_per_minute: float | None = None,
        requests_per_day: int | None = None,
        spend_per_10min_usd: float | None = None,
        meters: Sequence[Meter] = (),
        scope: str = "default",
        backend: LimitBackend | None = None,
        adaptive: AdaptiveLimit | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if requests_per_minute is not None and requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be positive")
        self.max_in_flight = max_in_flight
        self.requests_per_minute = requests_per_minute
        self.scope = scope
        self.backend: LimitBackend = backend or InProcessBackend()
        self.adaptive = adaptive
        self._clock = clock
        fixed: list[Meter] = []
        if max_in_flight is not None:
            fixed.append(InFlightCap(max_in_flight))
        if requests_per_minute is not None and adaptive is None:
            fixed.append(RequestsPerMinute(requests_per_minute, _burst(burst, max_in_flight, requests_per_minute)))
        if images_per_minute is not None:
            fixed.append(ImagesPerMinute(images_per_minute))
        if requests_per_day is not None:
            fixed.append(DailyQuota(requests_per_day))
        if spend_per_10min_usd is not None:
            fixed.append(SpendPerWindow(spend_per_10min_usd))
        self._fixed = tuple(fixed) + tuple(meters)
        self._lock = threading.Lock()
        self._leases: list[str] = []
        self._turn = _FifoTurn()
        self.stats = ControllerStats()

    @property
    def meters(self) -> tuple[Meter, ...]:
        """The meters in force right now (an adaptive rate changes as it learns)."""
        if self.adaptive is None:
            return self._fixed
        limit = self.adaptive.limit
        if limit is None:  # not metered until the first push-back: the window still logs every start
            return self._fixed + (RequestsPerMinute(UNMETERED_RPM, self.max_in_flight or 1),)
        return self._fixed + (RequestsPerMinute(limit, _burst(None, self.max_in_flight, limit)),)

    def try_acquire(self, demand: Demand = Demand()) -> float:
        """Take a slot now and return 0.0, or return how long to wait before trying again.
        Raises ``QuotaExhausted`` when the scope is parked for the day."""
        verdict = self._try(demand)
        return 0.0 if verdict.admitted else verdict.wait_s

    def _try(self, demand: Demand) -> Verdict:
        now = self._clock()
        verdict = self.backend.try_admit(self.scope, self.meters, demand, now)
        if verdict.parked_until is not None:
            raise self.parked_error(verdict.parked_until)
        if verdict.lease is not None:  # admitted
            with self._lock:
                self._leases.append(verdict.lease)
                self.stats.admitted += 1
                self.stats.in_flight += 1
                self.stats.max_in_flight_seen = max(self.stats.max_in_flight_seen, self.stats.in_flight)
        return verdict

    def parked_error(self, until: float) -> QuotaExhausted:
        reset = datetime.fromtimestamp(until, UTC)
        return QuotaExhausted(
            f"not sent: the daily request quota of {self.scope} is used up; it resets at "
            f"{reset.isoformat(timespec='minutes')} (midnight Pacific) — run again after that",
            reset_at=reset,
        )

    def release(self, lease: str | None = None) -> None:
        """Give back an in-flight slot (``lease`` from ``acquire``; any of ours if None)."""
        with self._lock:
            if lease is None:
                lease = self._leases.pop() if self._leases else None
            elif lease in self._leases:
                self._leases.remove(lease)
            else:
                return
            if lease is None:
                return
            self.stats.in_flight -= 1
        self.backend.release(self.scope, lease)

    def cooldown(self, seconds: float | None) -> None:
        """Pause every request on this scope for ``seconds`` (the server's retry delay)."""
        if not seconds or seconds <= 0:
            return
        self.backend.cooldown(self.scope, seconds, self._clock())
        with self._lock:
            self.stats.cooldowns += 1

    def park(self, until: datetime) -> None:
        """Stop admitting on this scope until ``until`` (a per-day quota is gone)."""
        self.backend.park(self.scope, until.timestamp())

    def parked_until(self) -> datetime | None:
        until = self.backend.parked_until(self.scope, self._clock())
        return None if until is None else datetime.fromtimestamp(until, UTC)

    def settle(self, lease: str, reserved: Demand, actual_cost_usd: float) -> None:
        """Replace the reserved worst-case cost of a request by its real cost."""
        if reserved.cost_usd:
            self.backend.settle(self.scope, lease, self.meters, reserved, actual_cost_usd)

    def record_sent(self) -> None:
        """A request admitted by ``acquire`` is being sent now (an adaptive rate counts it)."""
        if self.adaptive is not None:
            self.adaptive.on_sent()

    def record_success(self) -> None:
        if self.adaptive is not None:
            self.adaptive.on_success()

    def record_throttle(self, kind: str) -> None:
        """The provider pushed back (``"429"`` or ``"503"``); an adaptive rate learns from it."""
        with self._lock:
            self.stats.throttled += 1
        if self.adaptive is not None:
            self.adaptive.on_throttle(kind)

    async def acquire(self, demand: Demand = Demand()) -> str:
        """Wait for a slot; returns its lease. Raises ``QuotaExhausted`` if parked."""
        started = self._clock()
        async with self._turn.turn():
            while True:
                verdict = self._try(demand)
                if verdict.lease is not None:  # admitted
                    lease = verdict.lease
                    break
                await asyncio.sleep(min(verdict.wait_s, _MAX_SLEEP_S))
        with self._lock:
            self.stats.waited_s += self._clock() - started
        return lease

    @asynccontextmanager
    async def slot(self, demand: Demand = Demand()) -> AsyncIterator[str]:
        """``async with controller.slot() as lease:`` around exactly one provider request."""
        lease = await self.acquire(demand)
        try:
            yield lease
        finally:
            self.release(lease)
