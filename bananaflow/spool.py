"""A durable local holding area for images that were paid for but could not be stored.

If S3 is unreachable when an image arrives, its bytes and upload instructions are written
here (atomically: temp file, fsync, rename) instead of being dropped; ``drain`` uploads them
when the store answers again, in the same run or the next one.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class _Uploader(Protocol):
    def put_image(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> None: ...


@dataclass(frozen=True)
class SpoolState:
    pending: int
    bytes: int
    directory: str


class Spool:
    """Images waiting for upload, one ``.bin`` + ``.json`` pair per object key."""

    def __init__(self, directory: Path, max_bytes: int = 2 * 1024**3) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    def _paths(self, key: str) -> tuple[Path, Path]:
        name = key.replace("/", "__")
        return self.directory / f"{name}.bin", self.directory / f"{name}.json"

    def state(self) -> SpoolState:
        if not self.directory.exists():
            return SpoolState(0, 0, str(self.directory))
        bins = list(self.directory.glob("*.bin"))
        return SpoolState(len(bins), sum(p.stat().st_size for p in bins), str(self.directory))

    def put(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> Path:
        """Keep an image until it can be uploaded. Raises OSError when the spool is full."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.state().bytes + len(data) > self.max_bytes:
            raise OSError(f"spool {self.directory} is full ({self.max_bytes} bytes)")
        bin_path, meta_path = self._paths(key)
        _atomic_write(bin_path, data)
        meta = {"key": key, "content_type": content_type, "metadata": metadata}
        _atomic_write(meta_path, json.dumps(meta).encode())
        return bin_path

    def drain(self, store: _Uploader) -> int:
        """Upload everything spooled; stop at the first failure (the store is still down)."""
        if not self.directory.exists():
            return 0
        uploaded = 0
        for meta_path in sorted(self.directory.glob("*.json")):
            bin_path = meta_path.with_suffix(".bin")
            if not bin_path.exists():
                meta_path.unlink(missing_ok=True)
                continue
            meta = json.loads(meta_path.read_text())
            store.put_image(meta["key"], bin_path.read_bytes(), meta["content_type"], meta["metadata"])
            bin_path.unlink()
            meta_path.unlink()
            uploaded += 1
        return uploaded


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
