"""What the simulator's judge was asked: counters and a log, kept apart from the image calls'.

Judge calls are counted on their own (``stats()["judge"]``), so the image counters and 60 s
windows that the rate-limit tests read stay about images. Each log entry names the images the
judge was shown by perceptual hash (``imagehash.phash``, stable through resizing and
re-encoding), so a test can check the judge saw the product's reference photo, and what it
decided.
"""
from __future__ import annotations

import hashlib
import io
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

import imagehash
from PIL import Image

_LOG_LIMIT = 100_000


def image_phash(data: bytes) -> str:
    """The 64-bit perceptual hash of an encoded image, hex (``""`` when it does not decode)."""
    try:
        return str(imagehash.phash(Image.open(io.BytesIO(data)).convert("RGB")))
    except Exception:  # noqa: BLE001 - a broken image is recorded as such, not raised
        return ""


@dataclass
class JudgeRecord:
    """One judge request, filled in as it is answered."""

    t_start: float
    route: str
    model: str | None = None
    prompt_sha256: str | None = None
    images: int = 0
    image_phashes: list[str] = field(default_factory=list)
    outcome: str | None = None
    http_status: int | None = None
    passed: bool | None = None
    failed_checks: dict[str, str] = field(default_factory=dict)
    t_end: float | None = None

    def set_request(self, prompt: str, images: tuple[bytes, ...]) -> None:
        """A hash of the prompt (it quotes catalog data) and of each image shown."""
        self.prompt_sha256 = hashlib.sha256(prompt.encode("utf-8")).hexdigest()
        self.images = len(images)
        self.image_phashes = [image_phash(image) for image in images]


class JudgeStats:
    """Thread-safe judge counters and log."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._by_route: Counter[str] = Counter()
            self._by_outcome: Counter[str] = Counter()
            self._total = 0
            self._in_flight = 0
            self._log: deque[JudgeRecord] = deque(maxlen=_LOG_LIMIT)

    def start(self, route: str) -> JudgeRecord:
        record = JudgeRecord(t_start=time.time(), route=route)
        with self._lock:
            self._total += 1
            self._by_route[route] += 1
            self._log.append(record)
        return record

    def enter_flight(self) -> None:
        with self._lock:
            self._in_flight += 1

    def leave_flight(self) -> None:
        with self._lock:
            self._in_flight -= 1

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def finish(self, record: JudgeRecord, outcome: str, http_status: int | None) -> None:
        with self._lock:
            record.t_end = time.time()
            record.outcome = outcome
            record.http_status = http_status
            self._by_outcome[outcome] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"requests_total": self._total, "by_route": dict(self._by_route),
                    "by_outcome": dict(self._by_outcome), "in_flight": self._in_flight}

    def log(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(record) for record in self._log]
