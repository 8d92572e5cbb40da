"""A circuit breaker per (endpoint, model): stop sending where the provider keeps failing.

When a model is overloaded for minutes, every retry costs a request from the quota and a
wait, and the whole run slows to the retry policy's pace. The breaker counts consecutive
server-side failures (5xx, overload, no answer) and, past ``failure_threshold``, *opens*:
nothing is sent there for ``open_for_s`` and work falls back to the next route. Then it
*half-opens*: one probe request at a time is let through; a success *closes* it, a failure
opens it again. Client errors (400, safety blocks) say nothing about the endpoint's health
and count as successes of the endpoint.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Closed → open → half-open → closed, safe across threads and coroutines."""

    def __init__(
        self,
        failure_threshold: int = 5,
        open_for_s: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or open_for_s <= 0:
            raise ValueError("failure_threshold must be >= 1 and open_for_s positive")
        self.failure_threshold = failure_threshold
        self.open_for_s = open_for_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probe_out = False
        self.opened = 0  # how many times it opened, for the summary

    @property
    def state(self) -> BreakerState:
        with self._lock:
            self._maybe_half_open()
            return self._state

    def _maybe_half_open(self) -> None:
        if self._state == "open" and self._clock() - self._opened_at >= self.open_for_s:
            self._state, self._probe_out = "half_open", False

    def allow(self) -> bool:
        """Whether a request may be sent now (in half-open: only the one probe)."""
        with self._lock:
            self._maybe_half_open()
            if self._state == "closed":
                return True
            if self._state == "half_open" and not self._probe_out:
                self._probe_out = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._state, self._failures, self._probe_out = "closed", 0, False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state == "half_open" or self._failures >= self.failure_threshold:
                if self._state != "open":
                    self.opened += 1
                self._state, self._opened_at, self._probe_out = "open", self._clock(), False
