"""Quota admission, shaped like Google's: requests per minute, per day, no quota at all,
plus a cap on concurrent requests.

A 429 carries the server's instructions (which quota, its value, how long to wait), and
the client's rate controller is built on them, so every rejection here says exactly what
Google would: a per-minute rejection names ``...PerMinute...`` and when the sliding
window frees a slot; a per-day one names ``...PerDay...`` and gives no retry delay.
Rejected requests do not use quota, as on the real service.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from bananaflow.testing.simulator.config import SimulatorConfig

PAID_METRIC = "generativelanguage.googleapis.com/generate_content_paid_tier_requests"
FREE_METRIC = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
PER_MINUTE_ID = "GenerateRequestsPerMinutePerProjectPerModel"
PER_DAY_ID = "GenerateRequestsPerDayPerProjectPerModel"
FREE_TIER_ID = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
SCRIPTED_LIMIT = 20  # quotaValue named by scripted 429s when no real limit is set
_MIN_IN_FLIGHT_DELAY = 0.05


@dataclass(frozen=True)
class QuotaRejection:
    """One 429, independent of the wire format it will be written in."""

    outcome: str  # "429", "429_day" or "429_zero": the stats/log outcome word
    model: str
    quota_id: str
    quota_metric: str
    quota_value: str
    retry_delay: float | None  # seconds; None when waiting will not help


def per_minute(model: str, limit: int, retry_delay: float) -> QuotaRejection:
    """A per-minute 429 that tells the client to wait ``retry_delay`` seconds."""
    return QuotaRejection("429", model, PER_MINUTE_ID, PAID_METRIC, str(limit), max(0.0, retry_delay))


def per_day(model: str, limit: int) -> QuotaRejection:
    """A per-day 429: no retry delay, the quota resets at midnight Pacific."""
    return QuotaRejection("429_day", model, PER_DAY_ID, PAID_METRIC, str(limit), None)


def limit_zero(model: str) -> QuotaRejection:
    """The project has no quota for this model at all ("limit: 0")."""
    return QuotaRejection("429_zero", model, FREE_TIER_ID, FREE_METRIC, "0", None)


class QuotaGate:
    """Admits or rejects requests against the configured limits. Limits are per
    project, so one gate is shared by every route and model."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Start a fresh minute window and a fresh day."""
        with self._lock:
            self._admitted: deque[float] = deque()
            self._today = 0

    def admit(self, config: SimulatorConfig, model: str, in_flight: int) -> QuotaRejection | None:
        """Reject with the first limit the request breaks, or count it and return None."""
        now = time.monotonic()
        with self._lock:
            while self._admitted and self._admitted[0] <= now - 60.0:
                self._admitted.popleft()
            if model in config.quota_zero_models:
                return limit_zero(model)
            rpd = config.requests_per_day
            if rpd is not None and self._today >= rpd:
                return per_day(model, rpd)
            rpm = config.requests_per_minute
            if rpm is not None and len(self._admitted) >= rpm:
                # The window frees a slot when the (len - rpm + 1)-th oldest admission ages out.
                oldest_blocking = self._admitted[len(self._admitted) - rpm]
                return per_minute(model, rpm, oldest_blocking + 60.0 - now)
            cap = config.max_in_flight
            if cap is not None and in_flight >= cap:
                # A slot frees once a running request finishes: within one latency at most.
                return per_minute(model, cap, max(config.latency_s[1], _MIN_IN_FLIGHT_DELAY))
            self._admitted.append(now)
            self._today += 1
            return None
