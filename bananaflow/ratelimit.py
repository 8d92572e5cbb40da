"""Admission control for one quota scope (endpoint + model).

Google's limits are per project and answer overflow with 429s that cost a request each, so
bananaflow meters itself *before* sending: an in-flight cap, a requests-per-minute meter, and
a shared cooldown — one 429 carrying a delay pauses every request on the scope instead of
each coroutine discovering the limit on its own.

The controller is shared by the threads Prefect runs tasks on and by the coroutines inside
each task, so its state sits behind a ``threading.Lock`` and waiting is done with
``asyncio.sleep`` (never blocking an event loop).
"""
from __future__ import annotations

import asyncio
import collections
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Callable

#: How often a waiter re-checks for a free in-flight slot; short against 8-25 s generations.
_SLOT_POLL_S = 0.01
_WINDOW_S = 60.0


@dataclass
class ControllerStats:
    """What the controller did, for summaries and tests."""

    admitted: int = 0
    in_flight: int = 0
    max_in_flight_seen: int = 0
    cooldowns: int = 0
    waited_s: float = 0.0


class RateController:
    """Admits requests under ``max_in_flight`` concurrent and ``requests_per_minute``.

    The per-minute meter is a sliding 60-second window (never more than the limit in any
    window, which is how a provider counts) with starts spaced ``60 / rpm`` apart so the
    window fills evenly instead of in one burst at the top of each minute.
    """

    def __init__(
        self,
        max_in_flight: int | None = None,
        requests_per_minute: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if requests_per_minute is not None and requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be positive")
        self.max_in_flight = max_in_flight
        self.requests_per_minute = requests_per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._starts: collections.deque[float] = collections.deque()
        self._next_start = 0.0
        self._paused_until = 0.0
        self.stats = ControllerStats()

    def try_acquire(self) -> float:
        """Take a slot now and return 0.0, or return how long to wait before trying again."""
        with self._lock:
            now = self._clock()
            if now < self._paused_until:
                return self._paused_until - now
            if self.max_in_flight is not None and self.stats.in_flight >= self.max_in_flight:
                return _SLOT_POLL_S
            if self.requests_per_minute is not None:
                while self._starts and self._starts[0] <= now - _WINDOW_S:
                    self._starts.popleft()
                if len(self._starts) >= self.requests_per_minute:
                    return self._starts[0] + _WINDOW_S - now
                if now < self._next_start:
                    return self._next_start - now
                self._starts.append(now)
                self._next_start = max(now, self._next_start) + _WINDOW_S / self.requests_per_minute
            self.stats.in_flight += 1
            self.stats.admitted += 1
            self.stats.max_in_flight_seen = max(self.stats.max_in_flight_seen, self.stats.in_flight)
            return 0.0

    def release(self) -> None:
        with self._lock:
            self.stats.in_flight -= 1

    def cooldown(self, seconds: float | None) -> None:
        """Pause every request on this scope for ``seconds`` (the server's retry delay)."""
        if not seconds or seconds <= 0:
            return
        with self._lock:
            until = self._clock() + seconds
            if until > self._paused_until:
                self._paused_until = until
                self.stats.cooldowns += 1

    async def acquire(self) -> None:
        started = self._clock()
        while (wait := self.try_acquire()) > 0:
            await asyncio.sleep(wait)
        with self._lock:
            self.stats.waited_s += self._clock() - started

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """``async with controller.slot():`` around exactly one provider request."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()
