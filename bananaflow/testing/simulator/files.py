"""Images handed out by URL (OpenAI ``response_format=url``), kept for a short while.

Real URLs are short-lived; a bounded store models that and keeps memory flat.
"""
from __future__ import annotations

import threading
import uuid
from collections import OrderedDict

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg"}


class FileStore:
    """The last ``capacity`` images served by URL, by file name."""

    def __init__(self, capacity: int = 64) -> None:
        self._capacity = capacity
        self._files: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, data: bytes, mime_type: str) -> str:
        """Store bytes and return the file name (``<id>.png`` or ``<id>.jpg``)."""
        name = f"{uuid.uuid4().hex}.{EXTENSIONS[mime_type]}"
        with self._lock:
            self._files[name] = (data, mime_type)
            while len(self._files) > self._capacity:
                self._files.popitem(last=False)
        return name

    def get(self, name: str) -> tuple[bytes, str] | None:
        """Bytes and MIME type, or None once expired or never stored."""
        with self._lock:
            return self._files.get(name)

    def clear(self) -> None:
        with self._lock:
            self._files.clear()
