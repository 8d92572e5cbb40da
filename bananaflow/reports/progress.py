"""Counting finished items across threads, for progress bars and progress artifacts.

Items report here as they finish (from any task thread); observers (a rich progress bar
in the CLI, a Prefect progress artifact) read counts. The tracker holds counters, not a
status per item (a 100,000-item run would keep 100,000 of them): a chunk task that asks for
a retry takes its rows back first (``retract``), so a retried item is still counted once.
"""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable

from bananaflow.landing.manifest import ManifestRow

Observer = Callable[["ProgressTracker"], None]


class ProgressTracker:
    def __init__(self, total: int) -> None:
        self.total = total
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._done = 0
        self._observers: list[Observer] = []

    def subscribe(self, observer: Observer) -> None:
        self._observers.append(observer)

    def item_done(self, row: ManifestRow) -> None:
        with self._lock:
            self._counts[row.status] += 1
            self._done += 1
        for observer in list(self._observers):
            observer(self)

    def retract(self, rows: Iterable[ManifestRow]) -> None:
        """Uncount rows reported earlier whose items will run again (a retried chunk)."""
        with self._lock:
            for row in rows:
                if self._counts[row.status] > 0:
                    self._counts[row.status] -= 1
                    self._done -= 1
            self._counts = +self._counts  # drop statuses down to zero

    @property
    def done(self) -> int:
        with self._lock:
            return self._done

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self._counts)

    @property
    def fraction(self) -> float:
        return 1.0 if self.total == 0 else self.done / self.total


_watchers: list[Callable[[ProgressTracker], None]] = []


def watch(callback: Callable[[ProgressTracker], None]) -> Callable[[], None]:
    """Be told about every tracker a run in this process starts (the CLI's progress bar
    uses this to follow a flow it started); returns a function that stops watching."""
    _watchers.append(callback)
    return lambda: _watchers.remove(callback)


def announce(tracker: ProgressTracker) -> None:
    for callback in list(_watchers):
        callback(tracker)
