"""What the simulator saw: counters and a per-request log.

Tests judge the client by these numbers (did it ever exceed the rate limit, how many
requests were in flight at once), so they count every request that reached a generation
route, including the ones the simulator rejected. The server's event loop writes and test
threads read, hence the lock.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

WINDOW_SECONDS = 60.0
_LOG_LIMIT = 100_000  # keeps a long CLI run from growing without bound


@dataclass
class RequestRecord:
    """One request to a generation route, filled in as it is answered."""

    t_start: float
    route: str
    model: str | None = None
    prompt_sha256: str | None = None
    aspect_ratio: str | None = None
    image_size: str | None = None
    reference_images: int = 0
    t_end: float | None = None
    outcome: str | None = None
    http_status: int | None = None

    def set_prompt(self, prompt: str) -> None:
        """Log a hash, never the prompt itself: prompts may hold customer data."""
        self.prompt_sha256 = hashlib.sha256(prompt.encode("utf-8")).hexdigest()


class StatsRecorder:
    """Thread-safe counters and request log."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        with self._lock:
            self._by_route: Counter[str] = Counter()
            self._by_outcome: Counter[str] = Counter()
            self._requests_total = 0
            self._images_served = 0
            self._in_flight = 0
            self._max_in_flight = 0
            self._recent: deque[float] = deque()
            self._max_in_window = 0
            self._log: deque[RequestRecord] = deque(maxlen=_LOG_LIMIT)

    def start(self, route: str) -> RequestRecord:
        """Count a request on arrival, whatever will become of it."""
        now = time.time()
        record = RequestRecord(t_start=now, route=route)
        with self._lock:
            self._requests_total += 1
            self._by_route[route] += 1
            self._recent.append(now)
            while self._recent and self._recent[0] <= now - WINDOW_SECONDS:
                self._recent.popleft()
            self._max_in_window = max(self._max_in_window, len(self._recent))
            self._log.append(record)
        return record

    def enter_flight(self) -> None:
        """An admitted request starts being worked on."""
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def leave_flight(self) -> None:
        with self._lock:
            self._in_flight -= 1

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def finish(self, record: RequestRecord, outcome: str, http_status: int | None, image: bool = False) -> None:
        """Close a request's record; ``image`` says a final image was served."""
        with self._lock:
            record.t_end = time.time()
            record.outcome = outcome
            record.http_status = http_status
            self._by_outcome[outcome] += 1
            self._images_served += int(image)

    def snapshot(self) -> dict[str, Any]:
        """A copy of the counters, safe to keep and compare later."""
        with self._lock:
            return {
                "requests_total": self._requests_total,
                "by_route": dict(self._by_route),
                "by_outcome": dict(self._by_outcome),
                "in_flight": self._in_flight,
                "max_in_flight_seen": self._max_in_flight,
                "max_requests_in_any_60s_window": self._max_in_window,
                "images_served": self._images_served,
            }

    def log(self) -> list[dict[str, Any]]:
        """The request log as plain dicts, oldest first."""
        with self._lock:
            return [asdict(record) for record in self._log]
