"""Stop asking once the provider says the day's quota is gone.

A per-day 429 (``QuotaExhausted``) will not clear before midnight Pacific, and every
further request for the rest of the run is another refused call against the project. The
first one trips this breaker; items after it end ``deferred`` without a request, so the
next night's run (or the same command after the reset) picks them up.
"""
from __future__ import annotations

import threading

from bananaflow.errors import QuotaExhausted


class QuotaBreaker:
    """Shared by every task thread of one run, like the rate controller."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cause: QuotaExhausted | None = None

    def trip(self, exc: QuotaExhausted) -> None:
        with self._lock:
            if self._cause is None:
                self._cause = exc

    @property
    def cause(self) -> QuotaExhausted | None:
        return self._cause

    def check(self) -> None:
        """Raise a ``QuotaExhausted`` for an item that was not sent, once tripped."""
        cause = self._cause
        if cause is not None:
            raise QuotaExhausted(
                f"not sent: the provider's daily quota ran out earlier in this run ({cause.message})",
                reset_at=cause.reset_at,
                limit_zero=cause.limit_zero,
                quota_id=cause.quota_id,
                quota_value=cause.quota_value,
                model=cause.model,
            )
