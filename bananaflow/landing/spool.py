"""A durable local holding area for images that were paid for but are not in S3 yet.

Every generated image is written here (atomically: temp file, fsync, rename) *before* its
upload and removed once S3 has it, so neither an unreachable S3 nor a crash between the
provider's answer and the upload loses it. ``drain`` uploads whatever is left when the
store answers again, at the end of the same run or at the start of the next one.

The spool is bounded (``max_bytes``): when it is full, new images are uploaded without
this protection, and an upload failure then fails the item with a message saying so,
rather than filling the disk.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bananaflow.errors import ConfigurationError, StorageError
from bananaflow.landing.claims import remove_claims
from bananaflow.landing.keys import _MIME_EXT
from bananaflow.landing.review_store import item_stem_of

log = logging.getLogger("bananaflow.landing.spool")

DEFAULT_MAX_BYTES = 2 * 1024**3
IMAGE_EXTENSIONS = tuple(dict.fromkeys(_MIME_EXT.values()))


class ImageUploader(Protocol):
    """What storing an image needs of a store (``ImageStore``, the in-memory one)."""

    def put_image(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> object: ...


@dataclass(frozen=True)
class SpoolState:
    """What waits locally for S3, for the run summary."""

    pending: int
    bytes: int
    directory: str
    max_bytes: int = DEFAULT_MAX_BYTES

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class Spool:
    """Images waiting for upload, one ``.bin`` + ``.json`` pair per object key."""

    def __init__(self, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._used: int | None = None  # bytes on disk, counted once then kept up to date

    def _paths(self, key: str) -> tuple[Path, Path]:
        # A hash, not the key: keys can be longer than a file name may be.
        name = hashlib.sha256(key.encode()).hexdigest()[:40]
        return self.directory / f"{name}.bin", self.directory / f"{name}.json"

    def _bins(self) -> list[Path]:
        return list(self.directory.glob("*.bin")) if self.directory.exists() else []

    def state(self) -> SpoolState:
        sizes = []
        for path in self._bins():
            try:
                sizes.append(path.stat().st_size)
            except FileNotFoundError:  # uploaded by a concurrent drain
                pass
        with self._lock:
            self._used = sum(sizes)
        return SpoolState(len(sizes), sum(sizes), str(self.directory), self.max_bytes)

    def put(
        self, key: str, data: bytes, content_type: str, metadata: dict[str, str], *,
        also: tuple[str, bytes, str] | None = None,
    ) -> Path:
        """Keep an image until it is uploaded. Raises OSError when the spool is full.
        ``also``: a small object ``(key, bytes, content type)`` uploaded right after the image
        (the quality gate's marker that says the image still has to be judged)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._used is None:
            self.state()
        with self._lock:
            assert self._used is not None
            if self._used + len(data) > self.max_bytes:
                raise OSError(f"spool {self.directory} is full ({self.max_bytes} bytes)")
            self._used += len(data)
        bin_path, meta_path = self._paths(key)
        try:
            meta: dict[str, object] = {"key": key, "content_type": content_type, "metadata": metadata}
            if also is not None:
                meta["also"] = {"key": also[0], "data": also[1].decode("utf-8"), "content_type": also[2]}
            _atomic_write(meta_path, json.dumps(meta).encode())
            _atomic_write(bin_path, data)  # last: a .bin only exists with its instructions
        except BaseException:
            with self._lock:
                self._used = max(0, (self._used or 0) - len(data))
            raise
        return bin_path

    def entry_path(self, key: str) -> Path:
        """The file ``put`` keeps ``key``'s bytes in."""
        return self._paths(key)[0]

    def discard_entry(self, bin_path: Path) -> None:
        """Forget the entry ``put`` returned (when its key is not at hand)."""
        try:
            size = bin_path.stat().st_size
            bin_path.unlink()
        except FileNotFoundError:
            return
        bin_path.with_suffix(".json").unlink(missing_ok=True)
        with self._lock:
            if self._used is not None:
                self._used = max(0, self._used - size)

    def discard(self, key: str) -> None:
        """Forget an image S3 now holds."""
        bin_path, meta_path = self._paths(key)
        try:
            size = bin_path.stat().st_size
            bin_path.unlink()
        except FileNotFoundError:
            size = 0
        meta_path.unlink(missing_ok=True)
        with self._lock:
            if self._used is not None:
                self._used = max(0, self._used - size)

    def find(self, stem: str) -> str | None:
        """The key of a spooled image for ``stem`` (whatever its extension), if one waits here:
        it is paid for, so it must be uploaded rather than generated again."""
        for ext in IMAGE_EXTENSIONS:
            key = f"{stem}.{ext}"
            if self._paths(key)[0].exists():
                return key
        return None

    def upload(self, key: str, store: ImageUploader) -> bool:
        """Upload one spooled image and forget it. False if it is no longer here; raises
        ``StorageError`` if S3 still refuses it."""
        bin_path, meta_path = self._paths(key)
        try:
            meta = json.loads(meta_path.read_text())
            data = bin_path.read_bytes()
        except FileNotFoundError:
            return False
        store.put_image(meta["key"], data, meta["content_type"], meta["metadata"])
        self.discard(key)
        _forget_claims(store, meta["key"])
        return True

    def drain(self, store: ImageUploader) -> int:
        """Upload everything spooled; stop at the first ``StorageError`` (S3 is still down)
        and leave the rest for later. Returns how many images were uploaded."""
        uploaded = 0
        for bin_path in sorted(self._bins()):
            meta_path = bin_path.with_suffix(".json")
            try:
                meta = json.loads(meta_path.read_text())
                data = bin_path.read_bytes()
            except FileNotFoundError:  # another process uploaded it meanwhile
                continue
            except ValueError:
                log.warning("spool entry %s has unreadable instructions; left in place", bin_path.name)
                continue
            also = meta.get("also")
            try:
                if isinstance(also, dict) and _published_meanwhile(store, meta["key"]):
                    self.discard(meta["key"])  # another run judged and published it since: nothing to restore
                    continue
                store.put_image(meta["key"], data, meta["content_type"], meta["metadata"])
                if isinstance(also, dict):
                    store.put_image(also["key"], also["data"].encode("utf-8"), also["content_type"], {})
            except StorageError:
                break
            self.discard(meta["key"])
            _forget_claims(store, meta["key"])
            uploaded += 1
        return uploaded


def _published_meanwhile(store: Any, review_key: str) -> bool:
    """The item of an answer kept under ``review/`` has an image under its own key already."""
    find = getattr(store, "find_existing", None)
    return bool(find is not None and find(item_stem_of(review_key)))


def _forget_claims(store: Any, key: str) -> None:
    """The image under ``key`` is safe in S3: its claims (left behind when S3 refused their
    release, e.g. during the outage that put the image here) go too."""
    if hasattr(store, "list_keys") and hasattr(store, "delete"):
        remove_claims(store, item_stem_of(key))  # an answer kept under review/ was claimed by its item's stem


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


SPOOL_DIR_ENV, SPOOL_MAX_MB_ENV = "BANANAFLOW_SPOOL_DIR", "BANANAFLOW_SPOOL_MAX_MB"


def spool_for_bucket(bucket: str, environ: Mapping[str, str] = os.environ) -> Spool:
    """The spool a run on ``bucket`` keeps paid-for images in: ``BANANAFLOW_SPOOL_DIR``
    (default ``~/.cache/bananaflow/spool``)/bucket, at most ``BANANAFLOW_SPOOL_MAX_MB`` (2048)."""
    root = Path(environ.get(SPOOL_DIR_ENV) or Path.home() / ".cache" / "bananaflow" / "spool")
    raw = environ.get(SPOOL_MAX_MB_ENV) or "2048"
    try:
        max_bytes = int(float(raw) * 1024 * 1024)
    except ValueError:
        raise ConfigurationError(f"{SPOOL_MAX_MB_ENV}={raw!r} is not a number of megabytes") from None
    return Spool(root / bucket, max_bytes=max_bytes)
