"""Counting finished items across threads, for progress bars and progress artifacts.

Items report here as they finish (from any task thread); observers (a rich progress bar
in the CLI, a Prefect progress artifact) read counts. An item retried by a later task
attempt is counted once, by its key.
"""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from bananaflow.landing.manifest import ManifestRow

Observer = Callable[["ProgressTracker"], None]


class ProgressTracker:
    def __init__(self, total: int) -> None:
        self.total = total
        self._lock = threading.Lock()
        self._status: dict[tuple[int, str], str] = {}
        self._observers: list[Observer] = []

    def subscribe(self, observer: Observer) -> None:
        self._observers.append(observer)

    def item_done(self, row: ManifestRow) -> None:
        with self._lock:
            self._status[(row.row_number, row.variant)] = row.status
        for observer in list(self._observers):
            observer(self)

    @property
    def done(self) -> int:
        with self._lock:
            return len(self._status)

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self._status.values())

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
