"""A requests-per-minute limit learned from the provider's answers (AIMD).

Google no longer publishes per-model limits, so a project often does not know its own.
``AdaptiveLimit`` finds it the way TCP finds a link's capacity: grow while requests succeed,
cut multiplicatively when the provider pushes back.

* slow start: +``slow_start_growth`` requests/min per success until the first push-back
  (at 2, the rate doubles about every 30 s of successes), then
* additive increase: +``step`` requests/min per minute's worth of successes; by default a
  tenth of the rate at the last cut up to 95% of it (climb back within a minute), then a
  hundredth (probe slowly where the limit was found, as TCP CUBIC does near its last maximum);
* multiplicative decrease: x``decrease`` on a 429 — and never above what the provider let
  through in the last minute, which a 429 shows is about the limit (this ends slow start's
  overshoot in one step), and on 503s only when they are more
  than ``overload_share`` of recent answers (a few random 503s are the model's bad luck,
  not our rate); at most one cut per ``hold_s``, because answers already in flight were
  sent at the old rate and say nothing about the new one.

The learned limit can be saved to a small JSON file and used as the next run's start.
"""
from __future__ import annotations

import collections
import json
import threading
import time
from pathlib import Path
from typing import Callable


class AdaptiveLimit:
    """A thread-safe requests-per-minute estimate that follows the provider's push-back."""

    def __init__(
        self,
        initial: float = 60.0,
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
        if initial <= 0 or floor <= 0:
            raise ValueError("initial and floor must be positive")
        if not 0 < decrease < 1:
            raise ValueError("decrease must be between 0 and 1")
        self.floor = floor
        self.ceiling = ceiling
        self.step = step
        self.slow_start_growth = slow_start_growth
        self._cut_at = initial
        self.decrease = decrease
        self.overload_share = overload_share
        self.hold_s = hold_s
        self._clock = clock
        self._lock = threading.Lock()
        self._limit = self._clamp(initial)
        self._slow_start = True
        self._last_cut = -float("inf")
        self._recent: collections.deque[bool] = collections.deque(maxlen=50)  # True = overloaded
        self._answered: collections.deque[float] = collections.deque()  # requests the provider counted
        self.cuts = 0

    def _clamp(self, value: float) -> float:
        value = max(self.floor, value)
        return min(self.ceiling, value) if self.ceiling is not None else value

    @property
    def limit(self) -> float:
        """The current requests-per-minute estimate."""
        with self._lock:
            return self._limit

    @property
    def learned(self) -> bool:
        """Whether the provider has pushed back at least once (the estimate is informed)."""
        with self._lock:
            return not self._slow_start

    def _count_answer(self) -> None:
        now = self._clock()
        self._answered.append(now)
        while self._answered and self._answered[0] <= now - 60.0:
            self._answered.popleft()

    def on_success(self) -> None:
        with self._lock:
            self._count_answer()
            self._recent.append(False)
            if self._slow_start:
                growth = self.slow_start_growth
            elif self.step is not None:
                growth = self.step / self._limit
            else:  # climb back fast to just below where we were throttled, then probe slowly
                near = self._limit >= 0.95 * self._cut_at
                growth = self._cut_at / (100 if near else 10) / self._limit
            self._limit = self._clamp(self._limit + growth)

    def on_throttle(self, kind: str) -> None:
        """``kind`` is ``"429"`` (rate limited) or ``"503"`` (overloaded)."""
        with self._lock:
            if kind == "503":
                self._count_answer()  # a 503 was counted against the quota too
                self._recent.append(True)
                if sum(self._recent) < self.overload_share * max(len(self._recent), 20):
                    return
            now = self._clock()
            if now - self._last_cut < self.hold_s:
                return
            self._last_cut = now
            self._slow_start = False
            while self._answered and self._answered[0] <= now - 60.0:
                self._answered.popleft()
            counted = len(self._answered)
            if kind == "429" and counted >= 10:
                # what the provider let through in the last minute is the best measure of its limit
                self._cut_at = min(self._limit, counted)
                self._limit = self._clamp(min(self._limit * self.decrease, counted))
            else:
                self._cut_at = self._limit
                self._limit = self._clamp(self._limit * self.decrease)
            self.cuts += 1


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
