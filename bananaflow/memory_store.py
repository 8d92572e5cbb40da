"""An image store in this process's memory, for benchmarks and tests that measure the
engine rather than S3. Keeps only sizes and metadata, never the bytes, so a 10,000-image
benchmark measures bananaflow's memory and not the store's."""
from __future__ import annotations

import hashlib
import threading
from typing import Mapping

from bananaflow.storage import ObjectInfo


class MemoryStore:
    """The parts of ``ImageStore`` the item pipeline uses."""

    def __init__(self, bucket: str = "memory") -> None:
        self.bucket = bucket
        self._lock = threading.Lock()
        self.objects: dict[str, ObjectInfo] = {}

    def uri(self, key: str) -> str:
        return f"memory://{self.bucket}/{key}"

    def find_existing(self, stem: str) -> str | None:
        with self._lock:
            return next((k for k in sorted(self.objects) if k.startswith(stem + ".")), None)

    def head(self, key: str) -> ObjectInfo:
        with self._lock:
            return self.objects[key]

    def put_image(self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str] | None = None) -> bool:
        info = ObjectInfo(key, content_type, len(data), hashlib.md5(data).hexdigest(), dict(metadata or {}))
        with self._lock:
            self.objects[key] = info
        return True
