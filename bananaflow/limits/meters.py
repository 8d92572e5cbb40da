"""The limits a provider puts on one quota scope, as small declarative meters.

Google counts several things per project and model at once: requests per minute, images
per minute, requests per day, spend per rolling 10 minutes, and (for us) how many requests
we keep in flight. Each is one meter here, and a controller is simply the list of meters it
must satisfy, composed the way tenacity composes stop and wait strategies:

    RateController(meters=[RequestsPerMinute(20), ImagesPerMinute(20), InFlightCap(8),
                           RequestsPerDay(250), SpendPerWindow(10.0)])

Meters only *describe* a limit. A backend (``bananaflow.limits.backends``) keeps their counts,
in this process or in Redis, and evaluates all of a scope's meters in one atomic step, so a
request is admitted by every meter or by none.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Unit = Literal["requests", "images", "cost_usd"]


@dataclass(frozen=True)
class Demand:
    """What one request will use: it is one request, makes ``images`` images and may cost
    up to ``cost_usd`` (the worst case, reserved before sending)."""

    images: int = 1
    cost_usd: float = 0.0

    def amount(self, unit: Unit) -> float:
        return 1.0 if unit == "requests" else float(self.images) if unit == "images" else float(self.cost_usd)


@dataclass(frozen=True)
class WindowMeter:
    """At most ``limit`` units in any sliding ``window_s`` seconds.

    A sliding log, not a fixed window: the provider may count either way, and a sliding
    window never exceeds the limit under either. ``margin_s`` widens our window a little so
    network jitter between our clock and the server's cannot push a request into a window
    that the server still counts as full. ``spaced`` spreads starts ``window_s / limit``
    apart (GCRA's emission interval) instead of bursting at the top of each window;
    ``burst`` lets that many start back to back first (GCRA's burst tolerance), which a run
    that starts cold can use without ever exceeding the window's limit.
    """

    name: str
    limit: float
    window_s: float
    unit: Unit = "requests"
    spaced: bool = True
    margin_s: float = 0.1
    burst: int = 1

    def __post_init__(self) -> None:
        if self.burst < 1:
            raise ValueError(f"{self.name}: burst must be at least 1")
        if self.limit <= 0:
            raise ValueError(f"{self.name}: limit must be positive, got {self.limit}")
        if self.window_s <= 0:
            raise ValueError(f"{self.name}: window_s must be positive")

    @property
    def interval_s(self) -> float:
        """Minimum gap between two starts when ``spaced``."""
        return self.window_s / self.limit if self.spaced else 0.0

    @property
    def tolerance_s(self) -> float:
        """How far ahead of its spaced time a start may come (GCRA's tau)."""
        return (self.burst - 1) * self.interval_s


@dataclass(frozen=True)
class InFlightCap:
    """At most ``limit`` requests started and not yet finished."""

    limit: int
    name: str = "in_flight"

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("max_in_flight must be at least 1")


@dataclass(frozen=True)
class DailyQuota:
    """At most ``limit`` requests per quota day (``bananaflow.providers.quota_day``). When it
    is used up the scope is *parked* until the next reset: waiting in-process for hours helps
    nobody, the remaining items are deferred to the next run instead."""

    limit: int
    name: str = "requests_per_day"

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("requests_per_day must be at least 1")


Meter = WindowMeter | InFlightCap | DailyQuota


def RequestsPerMinute(limit: float, burst: int = 1) -> WindowMeter:  # noqa: N802 - reads like a class
    return WindowMeter("requests_per_minute", limit, 60.0, "requests", burst=burst)


def ImagesPerMinute(limit: float) -> WindowMeter:  # noqa: N802
    return WindowMeter("images_per_minute", limit, 60.0, "images")


def SpendPerWindow(usd: float, window_s: float = 600.0) -> WindowMeter:  # noqa: N802
    """Google's spend cap per rolling 10 minutes; charged with each call's worst-case cost."""
    return WindowMeter("spend_per_10min_usd", usd, window_s, "cost_usd", spaced=False, margin_s=0.0)
