"""``--max-cost``: a run never commits to more spend than the user allowed.

Cost is only known from the response's usage, *after* the call, and calls run concurrently,
so checking "spent so far" before each call could overshoot by a whole in-flight window.
Instead each call *reserves* its worst case before it is sent, and the reservation is
settled to the real cost when the answer arrives (to zero when the provider refused it, e.g.
429/503/400, which Google does not bill). Work that would cross the cap is not started.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence

from bananaflow.limits.accounts import AccountState, BudgetAccount, LocalAccount, micros
from bananaflow.providers.models import ModelSpec

#: The labels of the two caps, as the CLI spells them.
MAX_COST = "--max-cost"
DAILY_BUDGET = "--daily-budget"

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
    """Spend committed so far (settled costs plus open reservations) under every cap of the run.

    Each cap is an account (``bananaflow.limits.accounts``): ``--max-cost``, shared by the run,
    its shards and its retries, and ``--daily-budget``, shared by every run of the job that
    day. A reservation must fit in all of them; ``spent_usd``/``reserved_usd`` are this
    process's part, for its summary.

    Worst case: an account never commits more than its cap, reservations included; only an
    answer billed above the worst case reserved for it spends past a cap, and the first one
    stops this process's sending, so total spend exceeds the cap by at most what the calls
    in flight at that moment were billed beyond their reservations (bounded by the
    reservations in flight when the cap is reached, as long as no answer costs more than
    twice its worst case).
    """

    def __init__(self, max_cost_usd: float | None = None, *, accounts: Sequence[BudgetAccount] = ()) -> None:
        if not accounts:
            if max_cost_usd is None or max_cost_usd <= 0:
                raise ValueError("max_cost_usd must be positive")
            accounts = [LocalAccount(MAX_COST, max_cost_usd)]
        self.accounts: tuple[BudgetAccount, ...] = tuple(accounts)
        self.max_cost_usd = next((a.cap_usd for a in self.accounts if a.label == MAX_COST), None) or min(
            a.cap_usd for a in self.accounts)
        self._lock = threading.Lock()
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self.refused = 0
        #: The account that refused the last reservation: what a deferred item's reason names.
        self.refused_by: BudgetAccount = self.accounts[0]
        #: Answers billed above their reservation, and by how much in all. The first one
        #: stops every further reservation: the worst case was wrong, so the cap can only
        #: hold by sending nothing more.
        self.overshoots = 0
        self.overshoot_usd = 0.0

    def account(self, label: str) -> BudgetAccount | None:
        return next((a for a in self.accounts if a.label == label), None)

    def can_afford(self, usd: float) -> bool:
        """Whether a reservation of ``usd`` would fit now (no reservation is made)."""
        return self._first_short(usd, with_reserved=True) is None

    def fits_once_settled(self, usd: float) -> bool:
        """Whether ``usd`` could fit once the open reservations settle (they settle at or
        below what they reserved): if not, nothing will make room and the work is deferred;
        if so, it is worth waiting for the calls in flight to answer."""
        return self._first_short(usd, with_reserved=False) is None

    def _first_short(self, usd: float, *, with_reserved: bool) -> BudgetAccount | None:
        for account in self.accounts:
            state = account.state()
            if not AccountState(state.spent, state.reserved if with_reserved else 0).fits(
                    micros(usd), micros(account.cap_usd)):
                self.refused_by = account
                return account
        return None

    def reserve(self, usd: float) -> bool:
        """Reserve ``usd`` in every account if it fits under every cap; False (and nothing
        reserved) if not."""
        if self.stopped:
            with self._lock:
                self.refused += 1
            return False
        taken: list[BudgetAccount] = []
        for account in self.accounts:
            if not account.reserve(usd):
                for done in taken:
                    done.settle(usd, 0.0)
                with self._lock:
                    self.refused += 1
                    self.refused_by = account
                return False
            taken.append(account)
        with self._lock:
            self.reserved_usd += usd
        return True

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        """Turn a reservation into what the call really cost."""
        for account in self.accounts:
            account.settle(reserved_usd, actual_usd)
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

    def describe_refusal(self) -> str:
        """The cap that refused, in CLI terms: "the job's budget of $0.40 (--max-cost)"."""
        account = self.refused_by
        whose = "today's budget" if account.label == DAILY_BUDGET else "the job's budget"
        return f"{whose} of ${account.cap_usd:.2f} ({account.label})"
