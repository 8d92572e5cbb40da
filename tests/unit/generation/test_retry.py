"""The retry policy: what is retried, how long it waits, and when it gives up."""
from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable
from typing import Any

import pytest
import tenacity
from tenacity import RetryError

from bananaflow.errors import (
    AuthError,
    BadResponse,
    ConfigurationError,
    ContentBlocked,
    InvalidRequest,
    ModelNotFound,
    NoImageReturned,
    Overloaded,
    ProviderError,
    ProviderTimeout,
    QuotaExhausted,
    RateLimited,
    ServerError,
)
from bananaflow.generation.retry import RetryPolicy, call_with_retries


class FakeClock:
    """Stands in for tenacity's monotonic clock; the fake sleep advances it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(float(seconds))
        self.now += float(seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(tenacity, "time", fake)  # tenacity reads time.monotonic() from its module
    return fake


class scripted:  # noqa: N801 - used like a function
    """An attempt that raises/returns the scripted outcomes in order; each takes ``cost_s``.
    ``calls`` counts how often it was made (errors carry no attempt count)."""

    def __init__(self, outcomes: list[Any], clock: FakeClock | None = None, cost_s: float = 0.0) -> None:
        self.outcomes = iter(outcomes)
        self.clock = clock
        self.cost_s = cost_s
        self.calls = 0

    async def __call__(self) -> Any:
        self.calls += 1
        if self.clock is not None:
            self.clock.now += self.cost_s
        outcome = next(self.outcomes)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_success_after_server_errors_reports_attempts(clock: FakeClock) -> None:
    attempt = scripted([ServerError("500"), Overloaded("503"), "ok"])
    assert run(call_with_retries(attempt, RetryPolicy(), sleep=clock.sleep)) == ("ok", 3)
    assert len(clock.waits) == 2


def test_waits_at_least_server_delay(clock: FakeClock) -> None:
    seen: list[tuple[type, float]] = []
    attempt = scripted([RateLimited("429", retry_after=45.8), RateLimited("429", retry_after=3.0), "ok"])
    result = run(
        call_with_retries(
            attempt, RetryPolicy(initial_wait=1.0, max_wait=2.0), sleep=clock.sleep,
            before_sleep=lambda exc, wait: seen.append((type(exc), wait)),
        )
    )
    assert result == ("ok", 3)
    assert clock.waits[0] >= 45.8 and clock.waits[1] >= 3.0
    assert seen == [(RateLimited, clock.waits[0]), (RateLimited, clock.waits[1])]


@pytest.mark.parametrize(
    "exc",
    [
        InvalidRequest("400 bad ratio", http_status=400),
        AuthError("403", http_status=403),
        ModelNotFound("404", http_status=404),
        ContentBlocked("blocked", reason="IMAGE_SAFETY"),
        QuotaExhausted("per day"),
        ValueError("a bug, not a provider failure"),
    ],
)
def test_non_retryable_attempted_once(exc: Exception, clock: FakeClock) -> None:
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise exc

    with pytest.raises(type(exc)) as info:
        run(call_with_retries(attempt, RetryPolicy(), sleep=clock.sleep))
    assert info.value is exc and calls == 1 and clock.waits == []


def test_final_failure_reraises_last_error_with_attempts(clock: FakeClock) -> None:
    errors = [ServerError(f"500 #{i}") for i in range(5)]
    with pytest.raises(ProviderError) as info:
        run(call_with_retries(attempt := scripted(list(errors)), RetryPolicy(max_attempts=5), sleep=clock.sleep))
    assert not isinstance(info.value, RetryError)
    assert info.value is errors[-1] and attempt.calls == 5
    assert len(clock.waits) == 4


@pytest.mark.parametrize("exc_type", [NoImageReturned, BadResponse])
def test_no_image_gets_fewer_attempts(exc_type: type[ProviderError], clock: FakeClock) -> None:
    attempt = scripted([exc_type("no image") for _ in range(10)])
    with pytest.raises(exc_type):
        run(call_with_retries(attempt, RetryPolicy(max_attempts=5, no_image_max_attempts=3), sleep=clock.sleep))
    assert attempt.calls == 3


def test_server_delay_beyond_deadline_stops_without_waiting(clock: FakeClock) -> None:
    attempt = scripted([RateLimited("429", retry_after=1200.0), "ok"])
    with pytest.raises(RateLimited):
        run(call_with_retries(attempt, RetryPolicy(deadline_s=900.0), sleep=clock.sleep))
    assert clock.waits == [] and attempt.calls == 1


def test_deadline_honoured_with_slow_attempts(clock: FakeClock) -> None:
    # Each attempt burns 200 s; waits are >= 100 s (server delay). Nothing may end past 900 s.
    attempt = scripted([RateLimited("429", retry_after=100.0) for _ in range(20)], clock, cost_s=200.0)
    start = clock.now
    with pytest.raises(RateLimited):
        run(call_with_retries(attempt, RetryPolicy(max_attempts=20, deadline_s=900.0), sleep=clock.sleep))
    # attempts end at 200, 500, 800; a further wait would start after the deadline.
    assert attempt.calls == 3
    assert clock.now - start <= 900.0


def test_deadline_real_clock() -> None:
    attempt = scripted([ProviderTimeout("timed out") for _ in range(100)])
    policy = RetryPolicy(max_attempts=100, initial_wait=0.02, max_wait=0.05, deadline_s=0.25)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        run(call_with_retries(attempt, policy))
    assert time.monotonic() - started < 0.25 + 0.1
    assert attempt.calls >= 2


def test_full_jitter_bounded_by_cap(clock: FakeClock) -> None:
    random.seed(7)
    policy = RetryPolicy(max_attempts=30, initial_wait=1.0, max_wait=8.0, deadline_s=10_000.0)
    attempt = scripted([ServerError("500") for _ in range(30)])
    with pytest.raises(ServerError):
        run(call_with_retries(attempt, policy, sleep=clock.sleep))
    waits = clock.waits
    assert len(waits) == 29
    assert all(0.0 <= w <= 8.0 for w in waits)
    assert all(w <= 1.0 * 2**i for i, w in enumerate(waits))  # window doubles from initial_wait
    assert len({round(w, 6) for w in waits}) > 20  # jittered, not a fixed schedule
    assert max(waits[5:]) > 4.0  # and the window did grow to the cap


def test_rate_limited_without_delay_uses_backoff(clock: FakeClock) -> None:
    attempt = scripted([RateLimited("429", retry_after=None), "ok"])
    assert run(call_with_retries(attempt, RetryPolicy(initial_wait=1.0), sleep=clock.sleep)) == ("ok", 2)
    assert 0.0 <= clock.waits[0] <= 1.0


def test_policy_is_frozen_and_validated() -> None:
    with pytest.raises(AttributeError):
        RetryPolicy().max_attempts = 9  # type: ignore[misc]
    with pytest.raises(ConfigurationError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ConfigurationError):
        RetryPolicy(initial_wait=10, max_wait=1)
