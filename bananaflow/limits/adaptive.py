"""A requests-per-minute limit learned from the provider's answers (AIMD).

Google no longer publishes per-model limits, so a project often does not know its own.
``AdaptiveLimit`` finds it the way TCP finds a link's capacity, with one advantage TCP does
not have: a per-minute quota can be *counted*. What the provider took in the last minute
(requests sent minus those it answered 429) when it first says no is the quota itself.

* Start: with no start rate (``initial=None``, the default), requests are not metered at
  all, only capped in flight, until the first push-back: the quickest way to fill the
  provider's minute and find where it says no. A start rate (``--rpm``) slow-starts from
  there instead (+``slow_start_growth`` requests/min per success, doubling about every 20 s
  at 2); a limit learned by an earlier run (``resume``) is used as found, without a fresh
  search.
* First push-back: a 429 sets the limit to what the provider took in the last minute (as a
  rate over the time watched, if that was less than a minute: a quota used up early is then
  counted exactly by the next minute's 429, and a passing refusal does not make the run
  crawl); 429s to requests that were already in flight refine it for ``hold_s`` (a 429
  comes back at once, so they come right after). A 429's retry delay is honoured by the
  controller (a cooldown of the whole scope); a per-day 429 parks the scope instead and
  never reaches this class, so a used-up day is not taken for a low per-minute limit.
* Additive increase: +``step`` requests/min per minute's worth of successes; by default a
  tenth of the rate at the last cut up to 95% of it (climb back within a minute), then a
  hundredth (probe slowly where the limit was found, as TCP CUBIC does near its last
  maximum) once a minute's worth of answers at that rate went through without push-back:
  the quota is counted per minute, so a shorter test says nothing about it.
* Multiplicative decrease: x``decrease`` on a later 429, and never above what the provider
  took in the last minute; on 503s only when they are more than ``overload_share`` of
  recent answers (a few random 503s are the model's bad luck, not our rate); at most one
  cut per ``hold_s``, because answers already in flight were sent at the old rate and say
  nothing about the new one.

Requests are counted when sent (``on_sent``), as the provider counts them.
The learned limit can be saved to a small JSON file and used as the next run's start.
"""
from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

#: Fewer requests than this in the last minute do not tell a per-minute limit (once metered).
_INFORMATIVE = 10
_WINDOW_S = 60.0


class AdaptiveLimit:
    """A thread-safe requests-per-minute estimate that follows the provider's push-back."""

    def __init__(
        self,
        initial: float | None = None,
        *,
        floor: float = 1.0,
        ceiling: float | None = None,
        step: float | None = None,
        slow_start_growth: float = 2.0,
        decrease: float = 0.85,
        overload_share: float = 0.20,
        hold_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (initial is not None and initial <= 0) or floor <= 0:
            raise ValueError("initial and floor must be positive")
        if not 0 < decrease < 1:
            raise ValueError("decrease must be between 0 and 1")
        self.floor = floor
        self.ceiling = ceiling
        self.step = step
        self.slow_start_growth = slow_start_growth
        self.decrease = decrease
        self.overload_share = overload_share
        self.hold_s = hold_s
        self._clock = clock
        self._lock = threading.Lock()
        self._limit: float | None = None if initial is None else self._clamp(initial)
        # "open": not metered yet; "slow_start": growing from a given start; "steady": AIMD
        self._phase = "open" if initial is None else "slow_start"
        self._cut_at = self._limit or 0.0
        self._plateau = 0.0  # successes at the last cut's rate still to see before probing above it
        self._pushed_back = False
        self._last_cut = -float("inf")
        self._counted_cut = False  # the last cut came from counting what the provider took
        self._recent: collections.deque[bool] = collections.deque(maxlen=50)  # True = overloaded
        self._sent: collections.deque[float] = collections.deque()  # send times, last minute
        self._refused: collections.deque[float] = collections.deque()  # 429 times, last minute
        self._first_sent: float | None = None
        self.cuts = 0

    @classmethod
    def resume(cls, learned: float, *, clock: Callable[[], float] = time.monotonic) -> AdaptiveLimit:
        """Start at a limit an earlier run learned, as found: metered at it, probing above it
        only after a minute's worth of answers without push-back."""
        adaptive = cls(learned, clock=clock)
        adaptive._phase = "steady"
        adaptive._plateau = adaptive._cut_at
        return adaptive

    def _clamp(self, value: float) -> float:
        value = max(self.floor, value)
        return min(self.ceiling, value) if self.ceiling is not None else value

    @property
    def limit(self) -> float | None:
        """The current requests-per-minute estimate; None while not metered (no start rate
        was given and the provider has not pushed back yet)."""
        with self._lock:
            return self._limit

    @property
    def learned(self) -> bool:
        """Whether the provider has pushed back at least once (the estimate is informed)."""
        with self._lock:
            return self._pushed_back

    def _prune(self, now: float) -> None:
        for log in (self._sent, self._refused):
            while log and log[0] <= now - _WINDOW_S:
                log.popleft()

    def _taken(self, now: float) -> int:
        """Requests the provider took (sent, not refused with a 429) in the last minute."""
        self._prune(now)
        return len(self._sent) - len(self._refused)

    def on_sent(self) -> None:
        """A request is about to be sent."""
        with self._lock:
            now = self._clock()
            if self._first_sent is None:
                self._first_sent = now
            self._sent.append(now)
            self._prune(now)

    def on_success(self) -> None:
        with self._lock:
            self._recent.append(False)
            if self._limit is None:  # not metered: nothing to grow
                return
            if self._phase == "slow_start":
                growth = self.slow_start_growth
            elif self.step is not None:
                growth = self.step / self._limit
            elif self._limit < 0.95 * self._cut_at:  # climb back fast to just below where we were throttled
                growth = self._cut_at / 10 / self._limit
            elif self._plateau > 0:  # hold the found rate for a minute's worth of answers
                self._plateau -= 1
                growth = 0.0 if self._limit >= self._cut_at else self._cut_at / 100 / self._limit
                if self._limit + growth > self._cut_at:
                    growth = self._cut_at - self._limit
            else:  # then probe slowly above it
                growth = self._cut_at / 100 / self._limit
            self._limit = self._clamp(self._limit + growth)

    def on_throttle(self, kind: str) -> None:
        """``kind`` is ``"429"`` (rate limited) or ``"503"`` (overloaded)."""
        with self._lock:
            now = self._clock()
            if kind == "503":
                self._recent.append(True)
                if sum(self._recent) < self.overload_share * max(len(self._recent), 20):
                    return
            else:
                self._refused.append(now)
            taken = self._taken(now)
            rate = self._taken_per_minute(now, taken)
            if now - self._last_cut < self.hold_s:
                if kind == "429" and self._counted_cut and self._limit is not None:
                    # a 429 to a request that was in flight at the cut: it was counted as taken
                    self._limit = self._clamp(min(self._limit, rate))
                    self._cut_at = min(self._cut_at, self._limit)
                return
            self._last_cut = now
            self._pushed_back = True
            self._counted_cut = kind == "429" and (self._limit is None or taken >= _INFORMATIVE)
            if self._counted_cut:
                # what the provider took in the last minute is the best measure of its limit
                if self._limit is None:  # the first push-back of an unmetered start
                    self._cut_at = self._limit = self._clamp(rate)
                else:
                    self._cut_at = min(self._limit, max(rate, self.floor))
                    self._limit = self._clamp(min(self._limit * self.decrease, rate))
            else:  # overload, or too few requests to count: back off from the rate we were at
                base = self._limit if self._limit is not None else rate
                self._cut_at = base
                self._limit = self._clamp(base * self.decrease)
            self._phase = "steady"
            self._plateau = self._cut_at
            self.cuts += 1

    def _taken_per_minute(self, now: float, taken: int) -> float:
        """``taken`` as a per-minute rate. Before a whole minute has been watched it is the
        rate over the time watched: a 429 seconds into a run may be a full minute's quota
        used early (then the next minute's 429 counts it exactly) or a passing refusal
        (then the rate that was going through is no reason to crawl)."""
        span = _WINDOW_S if self._first_sent is None else min(_WINDOW_S, max(now - self._first_sent, 1.0))
        return max(self.floor, taken * _WINDOW_S / span)


class LearnedLimits:
    """Learned limits per scope in a JSON file, so the next run starts where this one ended."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, float]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # an unreadable state file only costs a slower start
        return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float)) and v > 0}

    def get(self, scope: str) -> float | None:
        return self.load().get(scope)

    def save(self, scope: str, requests_per_minute: float) -> None:
        data = self.load()
        data[scope] = round(requests_per_minute, 1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        tmp.replace(self.path)
