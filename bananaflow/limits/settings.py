"""The project's limits, declared once: the limits block, the CLI, the flow and the controllers
all read this model (the flow's ``limits`` parameter is the same fields, each optional)."""
from __future__ import annotations

import math

from pydantic import BaseModel, Field


class LimitSettings(BaseModel):
    """A project's limits for one model as AI Studio shows them, and how long to keep retrying.

    ``None`` means "not metered". ``adaptive`` learns requests per minute from 429/503 answers
    instead of trusting ``requests_per_minute`` (which then only sets where learning starts).
    """

    max_in_flight: int = Field(8, ge=1, description="Requests in flight at once.")
    requests_per_minute: float | None = Field(
        None, gt=0, description="Requests per minute your project allows; empty: not metered."
    )
    images_per_minute: float | None = Field(None, gt=0, description="Images per minute your project allows; empty: not metered.")
    requests_per_day: int | None = Field(None, ge=1, description="Requests per day (resets at midnight Pacific).")
    spend_per_10min_usd: float | None = Field(
        None, gt=0, description="Spend cap per rolling 10 minutes, USD ($10 Tier 1, $50 Tier 2, $200 Tier 3)."
    )
    adaptive: bool = Field(
        False, description="Learn requests per minute from 429/503 answers (AIMD); starts from requests_per_minute, "
        "else adaptive_start_rpm, else unmetered (in-flight cap only) until the first 429."
    )
    adaptive_start_rpm: float | None = Field(
        None, gt=0, description="Adaptive mode's first requests/min when nothing was learned yet; empty: unmetered."
    )
    max_attempts: int = Field(5, ge=1, description="Attempts per image for retryable errors.")
    deadline_s: float = Field(900.0, gt=0, description="Give up on an image after this many seconds.")
    worker_slots: int | None = Field(
        None,
        ge=1,
        description=(
            "Runs (e.g. catalog shards on several workers) that may generate at once with these limits, held by "
            "a Prefect global concurrency limit. Without BANANAFLOW_REDIS_URL each run gets 1/slots of every "
            "limit above, so together they stay within them. Empty: no cross-worker guard."
        ),
    )

    def split(self, slots: int) -> LimitSettings:
        """These limits for one of ``slots`` runs that must stay, together, within them:
        every meter divided (in-flight and per-day rounded down, at least 1)."""
        if slots <= 1:
            return self

        def share(value: float | None) -> float | None:
            return None if value is None else value / slots

        return self.model_copy(
            update={
                "max_in_flight": max(1, self.max_in_flight // slots),
                "requests_per_minute": share(self.requests_per_minute),
                "images_per_minute": share(self.images_per_minute),
                "requests_per_day": None
                if self.requests_per_day is None
                else max(1, math.floor(self.requests_per_day / slots)),
                "spend_per_10min_usd": share(self.spend_per_10min_usd),
            }
        )

