"""The manifest written batch by batch to local files, then uploaded: no frame of every row.

``write_manifest`` builds one DataFrame of all rows; a 100,000-row run would hold it (and the
rows) at once. Here each batch becomes a frame with the same ``manifest_frame`` and CSV
encoding (so the files are the same as ``write_manifest``'s), appended to ``manifest.csv``
and to a Parquet file (one row group per batch), and the two files go to S3 at the end.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bananaflow.landing.keys import join_key
from bananaflow.landing.manifest import ManifestRow, _csv_bytes, manifest_frame
from bananaflow.landing.storage import ImageStore

__all__ = ["upload_manifest", "write_manifest_files"]

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


def write_manifest_files(batches: Iterable[list[ManifestRow]], directory: Path | str) -> dict[str, Path]:
    """``manifest.csv`` and ``manifest.parquet`` in ``directory`` (created if needed), written
    batch by batch; each appears whole (written under a temporary name, then renamed)."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    paths = {"csv": target / "manifest.csv", "parquet": target / "manifest.parquet"}
    tmp = {kind: Path(tempfile.mkstemp(dir=target, prefix=f".{path.name}.", suffix=".tmp")[1])
           for kind, path in paths.items()}
    writer: pq.ParquetWriter | None = None
    try:
        with tmp["csv"].open("wb") as csv_file:
            for batch in _with_header_batch(batches):
                frame = manifest_frame(batch)
                data = _csv_bytes(frame)
                if csv_file.tell():  # the header is written once, with the first batch
                    data = data.split(b"\n", 1)[1] if b"\n" in data else b""
                csv_file.write(data)
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp["parquet"], table.schema)
                writer.write_table(table.cast(writer.schema))
        if writer is not None:
            writer.close()
            writer = None
        for kind, path in paths.items():
            os.replace(tmp[kind], path)
    finally:
        if writer is not None:
            writer.close()
        for path in tmp.values():
            path.unlink(missing_ok=True)
    return paths


def _with_header_batch(batches: Iterable[list[ManifestRow]]) -> Iterable[list[ManifestRow]]:
    """The batches, or one empty batch when there are none (the files still get their header/schema)."""
    empty = True
    for batch in batches:
        if batch:
            empty = False
            yield batch
    if empty:
        yield []


def upload_manifest(paths: dict[str, Path], store: ImageStore, run_key_prefix: str) -> dict[str, str]:
    """Upload the files of ``write_manifest_files`` under ``run_key_prefix``; ``{"csv": uri, "parquet": uri}``."""
    uris: dict[str, str] = {}
    for kind, path in paths.items():
        key = join_key(run_key_prefix, f"manifest.{kind}")
        store.put_file(key, path, CONTENT_TYPES[kind])
        uris[kind] = store.uri(key)
    return uris
