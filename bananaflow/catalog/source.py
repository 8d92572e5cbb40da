"""A catalog's bytes, from a local path or ``s3://bucket/key``, within the bounds of
``read_limits`` (size read, size after gunzip): the first step of reading a catalog."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bananaflow.catalog import read_limits
from bananaflow.catalog.encoding import decode_catalog
from bananaflow.errors import CatalogError, StorageError


@dataclass
class CatalogFile:
    """A catalog as read: its bytes (gunzipped), its file name without ``.gz`` (what messages
    name and sniffing looks at), and the encoding the user gave (None: detected)."""

    name: str
    data: bytes
    encoding: str | None = None

    def take_text(self) -> str:
        """The whole file as text; the bytes are dropped, since a parser that needs the text
        needs nothing else: half the peak memory of a big export."""
        text = decode_catalog(self.data, self.name, self.encoding)
        self.data = b""
        return text


def read_catalog(source: str, encoding: str | None = None) -> CatalogFile:
    """The catalog at ``source``; an empty or blank file is refused here, whatever its kind."""
    data, name = read_catalog_bytes(source)
    if not data or data.isspace():  # isspace, not strip: no copy of a 100 MB file
        raise CatalogError(f"{name} is empty; expected a header line such as 'sku,title,description'")
    return CatalogFile(name, data, encoding)


def read_catalog_bytes(source: str) -> tuple[bytes, str]:
    """The catalog's bytes (gunzipped) and its file name without ``.gz``."""
    name = PurePosixPath(source).name or source
    data = _read_s3(source) if source.startswith(("s3://", "gs://")) else _read_local(source)
    if data[:2] == b"\x1f\x8b":
        data = read_limits.gunzip(data, name)
        name = name.removesuffix(".gz")
    return data, name


def _read_local(source: str) -> bytes:
    path = Path(source).expanduser()
    if not path.exists():
        raise CatalogError(f"catalog {source} does not exist")
    if path.is_dir():
        raise CatalogError(f"catalog {source} is a directory; expected a CSV, TSV, JSONL or Parquet file")
    return read_limits.read_local(source, path)


def _read_s3(uri: str) -> bytes:
    """A catalog that cannot be read is a ``CatalogError``, whatever S3 or Cloud Storage said."""
    try:
        return read_limits.read_gs(uri) if uri.startswith("gs://") else read_limits.read_s3(uri)
    except StorageError as exc:
        raise CatalogError(f"cannot read catalog {uri}: {exc.message}") from None
