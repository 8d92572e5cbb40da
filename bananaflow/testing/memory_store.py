"""An image store in this process's memory, for benchmarks and tests that measure the
engine rather than S3. Keeps only sizes and metadata, never the bytes, so a 10,000-image
benchmark measures bananaflow's memory and not the store's.

S3 keeps objects outside the process; this stand-in keeps each one as compactly as it can
(its metadata values packed in one JSON string, the metadata names shared by every object
with the same layout), so what grows with the run is bananaflow's own state rather than a
dict and a dozen small strings per stored image."""
from __future__ import annotations

import bisect
import hashlib
import json
import threading
from collections.abc import Mapping
from typing import NamedTuple

from bananaflow.landing.storage import ObjectInfo


class _Stored(NamedTuple):
    content_type: str
    size: int
    etag: str
    names: tuple[str, ...]  # shared between objects
    values: str  # JSON list, in the order of ``names``


class MemoryStore:
    """The parts of ``ImageStore`` the item pipeline uses."""

    def __init__(self, bucket: str = "memory") -> None:
        self.bucket = bucket
        self._lock = threading.Lock()
        self.objects: dict[str, _Stored] = {}
        self._sorted: list[str] = []  # the keys in order: a lookup is a bisection, as S3 lists by prefix
        self._layouts: dict[tuple[str, ...], tuple[str, ...]] = {}

    def uri(self, key: str) -> str:
        return f"memory://{self.bucket}/{key}"

    def find_existing(self, stem: str) -> str | None:
        want = stem + "."
        with self._lock:
            i = bisect.bisect_left(self._sorted, want)
            return self._sorted[i] if i < len(self._sorted) and self._sorted[i].startswith(want) else None

    def find_with_sidecars(self, stem: str) -> tuple[str | None, list[str]]:
        beside = stem + "~"
        with self._lock:
            i = bisect.bisect_left(self._sorted, beside)
            keys = []
            while i < len(self._sorted) and self._sorted[i].startswith(beside):
                keys.append(self._sorted[i])
                i += 1
        return self.find_existing(stem), keys

    def head(self, key: str) -> ObjectInfo:
        with self._lock:
            stored = self.objects[key]
        metadata = dict(zip(stored.names, json.loads(stored.values)))
        return ObjectInfo(key, stored.content_type, stored.size, stored.etag, metadata)

    def put_image(self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str] | None = None) -> bool:
        meta = dict(metadata or {})
        etag = hashlib.md5(data).hexdigest()
        values = json.dumps(list(meta.values()), separators=(",", ":"))
        with self._lock:
            names = self._layouts.setdefault(tuple(meta), tuple(meta))
            if key not in self.objects:
                bisect.insort(self._sorted, key)
            self.objects[key] = _Stored(content_type, len(data), etag, names, values)
        return True
