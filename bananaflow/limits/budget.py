"""``--max-cost``: a run never commits to more spend than the user allowed.

Cost is only known from the response's usage, *after* the call, and calls run concurrently,
so checking "spent so far" before each call could overshoot by a whole in-flight window.
Instead each call *reserves* its worst case before it is sent, and the reservation is
settled to the real cost when the answer arrives (to zero when the provider refused it, e.g.
429/503/400, which Google does not bill). Work that would cross the cap is not started.
"""
from __future__ import annotations

import threading

from bananaflow.providers.models import ModelSpec

#: Output text/thought tokens and input tokens assumed for the worst case of one call:
#: Pro thinks before drawing, and a long product prompt with a reference image is ~2k tokens.
WORST_CASE_TEXT_OUTPUT_TOKENS = 4_000
WORST_CASE_INPUT_TOKENS = 2_000


def worst_case_cost_usd(spec: ModelSpec, image_size: str) -> float:
    """The most one call for ``image_size`` can reasonably be billed: the image at list
    price plus a generous allowance of thinking and prompt tokens."""
    return round(
        spec.list_price(image_size)
        + WORST_CASE_TEXT_OUTPUT_TOKENS * spec.text_output_usd_per_million / 1_000_000
        + WORST_CASE_INPUT_TOKENS * spec.input_usd_per_million / 1_000_000,
        6,
    )


def batch_worst_case_cost_usd(spec: ModelSpec, image_size: str) -> float:
    """``worst_case_cost_usd`` at Batch prices (images and tokens at the batch discount):
    what a batch run reserves per item before it submits."""
    discount = spec.list_price(image_size, batch=True) / spec.list_price(image_size)
    return round(worst_case_cost_usd(spec, image_size) * discount, 6)


class Budget:
    """Spend committed so far (settled costs plus open reservations) under ``max_cost_usd``."""

    def __init__(self, max_cost_usd: float) -> None:
        if max_cost_usd <= 0:
            raise ValueError("max_cost_usd must be positive")
        self.max_cost_usd = float(max_cost_usd)
        self._lock = threading.Lock()
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self.refused = 0
        #: Answers billed above their reservation, and by how much in all. The first one
        #: stops every further reservation: the worst case was wrong, so the cap can only
        #: hold by sending nothing more.
        self.overshoots = 0
        self.overshoot_usd = 0.0

    def can_afford(self, usd: float) -> bool:
        """Whether a reservation of ``usd`` would fit now (no reservation is made)."""
        with self._lock:
            return self.spent_usd + self.reserved_usd + usd <= self.max_cost_usd + 1e-9

    def fits_once_settled(self, usd: float) -> bool:
        """Whether ``usd`` could fit once the open reservations settle (they settle at or
        below what they reserved): if not, nothing will make room and the work is deferred;
        if so, it is worth waiting for the calls in flight to answer."""
        with self._lock:
            return self.spent_usd + usd <= self.max_cost_usd + 1e-9

    def reserve(self, usd: float) -> bool:
        """Reserve ``usd`` if it fits under the cap; False (and nothing reserved) if not."""
        with self._lock:
            if self.overshoots or self.spent_usd + self.reserved_usd + usd > self.max_cost_usd + 1e-9:
                self.refused += 1
                return False
            self.reserved_usd += usd
            return True

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        """Turn a reservation into what the call really cost."""
        with self._lock:
            self.reserved_usd = max(0.0, self.reserved_usd - reserved_usd)
            self.spent_usd += actual_usd
            if actual_usd > reserved_usd + 1e-9:
                self.overshoots += 1
                self.overshoot_usd += actual_usd - reserved_usd

    @property
    def stopped(self) -> bool:
        """Whether an answer billed above its reservation stopped further sending."""
        return self.overshoots > 0
