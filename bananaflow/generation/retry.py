"""How often, and how patiently, one image request is sent again.

Built from tenacity's strategies rather than a hand-written loop, so each rule is one
composable piece:

* retry only what ``bananaflow.errors.is_retryable`` allows. 400/401/403/404, safety blocks
  and ``QuotaExhausted`` are sent exactly once: repeating them only burns requests.
* wait ``max(server's retry_after, full-jitter exponential)``. Google's RetryInfo is the
  server telling us when the per-minute window reopens; waiting less is a guaranteed 429
  (the official SDK ignores it, which is why we do not use its retry).
* stop at ``max_attempts``, or at the deadline, or *before* a wait that would end past the
  deadline, or after ``no_image_max_attempts`` for ``NoImageReturned``/``BadResponse``
  (identical retries sometimes succeed, but not often enough to pay five times).

An image POST is not idempotent: a retry after a timeout may be billed twice. Callers
deduplicate (deterministic output keys) before calling; this module only decides timing.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState
from tenacity.retry import retry_base, retry_if_exception
from tenacity.stop import stop_after_attempt, stop_after_delay, stop_base, stop_before_delay
from tenacity.wait import wait_base, wait_random_exponential

from bananaflow.errors import (
    BadResponse,
    ConfigurationError,
    NoImageReturned,
    Overloaded,
    RateLimited,
    is_retryable,
)

T = TypeVar("T")


def _last_exception(retry_state: RetryCallState) -> BaseException | None:
    outcome = retry_state.outcome
    return outcome.exception() if outcome is not None and outcome.failed else None


class wait_server_delay(wait_base):  # noqa: N801 - named like tenacity's own strategies
    """Wait at least what the server asked for (``retry_after`` of a 429 or a capacity
    503's RetryInfo), and at least
    what ``fallback`` says, so a server delay shorter than our backoff never shortens it."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        backoff = float(self.fallback(retry_state))
        exc = _last_exception(retry_state)
        server = exc.retry_after if isinstance(exc, (RateLimited, Overloaded)) else None
        return max(backoff, float(server or 0.0))


class stop_after_attempt_on(stop_base):  # noqa: N801
    """Stop at ``max_attempt_number`` when the last failure is one of ``exc_types``:
    a tighter cap for failures that retries rarely fix."""

    def __init__(self, max_attempt_number: int, *exc_types: type[BaseException]) -> None:
        self.max_attempt_number = max_attempt_number
        self.exc_types = exc_types

    def __call__(self, retry_state: RetryCallState) -> bool:
        exc = _last_exception(retry_state)
        return isinstance(exc, self.exc_types) and retry_state.attempt_number >= self.max_attempt_number


@dataclass(frozen=True)
class RetryPolicy:
    """Retry limits for one request. Defaults match the official SDK's opt-in retry
    (5 attempts, 1 s initial, 60 s max) plus a 15-minute overall deadline."""

    max_attempts: int = 5
    initial_wait: float = 1.0
    max_wait: float = 60.0
    deadline_s: float = 900.0
    no_image_max_attempts: int = 3

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.no_image_max_attempts < 1:
            raise ConfigurationError("max_attempts and no_image_max_attempts must be at least 1")
        if self.initial_wait < 0 or self.max_wait < self.initial_wait or self.deadline_s <= 0:
            raise ConfigurationError(
                "retry waits must satisfy 0 <= initial_wait <= max_wait, and deadline_s must be positive"
            )

    def wait(self) -> wait_base:
        """Server delay if larger, else full jitter: uniform(0, min(max_wait, initial*2^n))."""
        return wait_server_delay(wait_random_exponential(multiplier=self.initial_wait, max=self.max_wait))

    def stop(self) -> stop_base:
        """Attempts cap | deadline reached | next wait would cross the deadline | no-image cap."""
        return (
            stop_after_attempt(self.max_attempts)
            | stop_after_delay(self.deadline_s)
            | stop_before_delay(self.deadline_s)
            | stop_after_attempt_on(self.no_image_max_attempts, NoImageReturned, BadResponse)
        )

    def retry(self) -> retry_base:
        """Retry only failures where sending the same request again may succeed."""
        return retry_if_exception(is_retryable)


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    before_sleep: Callable[[BaseException, float], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> tuple[T, int]:
    """Run ``attempt`` under ``policy``; return ``(result, attempts used)``.

    On final failure the *last* error itself is raised (never ``tenacity.RetryError``),
    so callers classify it like any single failure; a caller that reports how many requests
    a failure took counts them in ``attempt`` (the dispatcher does).
    ``before_sleep(exc, seconds)`` runs before each wait: the hook for a shared rate
    controller to pause other requests on the same quota.
    """
    attempts = 0

    async def counted() -> T:
        nonlocal attempts
        attempts += 1
        return await attempt()

    def notify(retry_state: RetryCallState) -> None:
        exc = _last_exception(retry_state)
        if before_sleep is not None and exc is not None:
            before_sleep(exc, retry_state.upcoming_sleep)

    retrying = AsyncRetrying(
        sleep=sleep,
        stop=policy.stop(),
        wait=policy.wait(),
        retry=policy.retry(),
        before_sleep=notify,
        reraise=True,
    )
    result: T = await retrying(counted)
    return result, attempts
