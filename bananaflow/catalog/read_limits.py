"""Bounds on reading a catalog: a file from outside must not take the machine's memory.

A 12 MB ``.csv.gz`` can expand to 4 GB, a 1.5 MB XLSX (a zip) to more, a 171 KB Parquet file
with one long dictionary value repeated to more still, ``/dev/zero`` reports 0 bytes and never
ends, and deeply nested JSON ends in a ``RecursionError``. Each bound below is checked *before*
the expensive step where it can be (declared sizes in zip and Parquet metadata, a stat before
reading), and while reading otherwise; each is one ``CatalogError`` line (exit 2) saying which
bound and how to raise it.

Settings (environment): ``BANANAFLOW_CATALOG_MAX_BYTES`` (bytes read, and bytes after
decompression or expansion; default 512 MB), ``BANANAFLOW_CATALOG_MAX_ROWS`` (default 2,000,000).
"""
from __future__ import annotations

import gzip
import io
import os
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bananaflow.catalog.rows import RawRow
from bananaflow.errors import CatalogError, StorageError

MAX_BYTES_ENV = "BANANAFLOW_CATALOG_MAX_BYTES"
MAX_ROWS_ENV = "BANANAFLOW_CATALOG_MAX_ROWS"
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_ROWS = 2_000_000
#: Nesting of JSON values (objects and arrays) in one row; a product needs a handful.
MAX_JSON_DEPTH = 64
#: Members of an XLSX (a zip); a workbook of one sheet has about ten.
MAX_ZIP_MEMBERS = 10_000
#: Cells (rows x columns) of a Parquet file.
MAX_CELLS = 100_000_000


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip().replace("_", "")
    if not value:
        return default
    if not value.isdigit() or int(value) <= 0:
        raise CatalogError(f"{name}={os.environ[name]!r} is not a positive whole number")
    return int(value)


def max_bytes() -> int:
    return _env_int(MAX_BYTES_ENV, DEFAULT_MAX_BYTES)


def max_rows() -> int:
    return _env_int(MAX_ROWS_ENV, DEFAULT_MAX_ROWS)


def _mb(n: int) -> str:
    return f"{n / 2**20:g} MB"


def too_large(name: str, what: str) -> CatalogError:
    return CatalogError(
        f"{name} {what} the catalog limit of {_mb(max_bytes())}; split the catalog, or raise {MAX_BYTES_ENV}"
    )


def read_local(source: str, path: Path) -> bytes:
    """A regular file's bytes, at most ``max_bytes()`` (``/dev/zero``, a FIFO or a device
    is refused before reading: their size says nothing)."""
    limit = max_bytes()
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise CatalogError(f"catalog {source} is not a regular file; expected a CSV, TSV, JSONL or Parquet file")
            if info.st_size > limit:
                raise too_large(_file_name(source), "is larger than")
            data = handle.read(info.st_size + 1)  # not limit + 1: read(n) allocates n bytes first
            while len(data) <= limit:  # a file still growing is read on, up to the limit
                more = handle.read(min(1 << 20, limit + 1 - len(data)))
                if not more:
                    break
                data += more
    except OSError as exc:
        raise CatalogError(f"cannot read catalog {source}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise too_large(_file_name(source), "is larger than")
    return data


def _file_name(source: str) -> str:
    return source.rstrip("/").rsplit("/", 1)[-1] or source


def read_gs(uri: str) -> bytes:
    """A Cloud Storage object's bytes, refused over ``max_bytes()`` by its size and while reading."""
    from bananaflow.landing.gcs import gcs_error, make_gcs_client

    bucket, _, key = uri.removeprefix("gs://").partition("/")
    if not bucket or not key:
        raise CatalogError(f"cannot read catalog {uri}: {uri!r} is not gs://bucket/key")
    limit = max_bytes()
    client = make_gcs_client()
    try:
        blob = client.bucket(bucket).get_blob(key)
        if blob is None:
            raise CatalogError(f"cannot read catalog {uri}: {uri} does not exist")
        if int(blob.size or 0) > limit:
            raise too_large(_file_name(uri), "is larger than")
        data: bytes = blob.download_as_bytes(end=limit)  # inclusive: limit + 1 bytes at most
    except CatalogError:
        raise
    except Exception as exc:
        error: StorageError = gcs_error(exc, "download", bucket=bucket, key=key)
        raise CatalogError(f"cannot read catalog {uri}: {error.message}") from None
    if len(data) > limit:
        raise too_large(_file_name(uri), "is larger than")
    return data


def read_s3(uri: str) -> bytes:
    """An object's bytes, refused over ``max_bytes()`` by its length and while reading."""
    from bananaflow.landing.storage import S3_ERRORS, endpoint_of, make_s3_client, storage_error

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise CatalogError(f"cannot read catalog {uri}: {uri!r} is not s3://bucket/key")
    limit = max_bytes()
    client = make_s3_client()
    try:
        response = client.get_object(Bucket=bucket, Key=key)
    except S3_ERRORS as exc:
        error: StorageError = storage_error(exc, "download", bucket=bucket, key=key, endpoint=endpoint_of(client))
        raise CatalogError(f"cannot read catalog {uri}: {error.message}") from None
    body = response["Body"]
    try:
        if int(response.get("ContentLength") or 0) > limit:
            raise too_large(_file_name(uri), "is larger than")
        data = body.read(limit + 1)
    finally:
        body.close()
    if len(data) > limit:
        raise too_large(_file_name(uri), "is larger than")
    return data


def gunzip(data: bytes, name: str) -> bytes:
    """Decompressed, stopping one byte past ``max_bytes()`` (a gzip bomb is refused)."""
    limit = max_bytes()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            out = stream.read(limit + 1)
    except (OSError, EOFError) as exc:
        raise CatalogError(f"{name} is not a readable gzip file: {exc}") from None
    if len(out) > limit:
        raise too_large(name, "expands past")
    return out


def check_zip(data: bytes, name: str) -> None:
    """An XLSX's members, by their declared sizes (``zipfile`` never returns more than a
    member declares), before any is decompressed."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a zip: the Excel reader says what is wrong
    if len(members) > MAX_ZIP_MEMBERS:
        raise CatalogError(f"{name} holds {len(members)} files; a workbook has far fewer (at most {MAX_ZIP_MEMBERS})")
    if sum(m.file_size for m in members) > max_bytes():
        raise too_large(name, "expands past")


def read_parquet(data: bytes, name: str) -> Any:
    """A Parquet file as a ``pyarrow.Table``, its expansion checked first: rows and cells
    from the metadata, then the text it would become (dictionary values repeated) measured
    on the dictionary-encoded columns, before any value becomes a Python object."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    source = pq.ParquetFile(io.BytesIO(data))
    meta = source.metadata
    check_row_count(meta.num_rows, name)
    if meta.num_rows * max(1, meta.num_columns) > MAX_CELLS:
        raise CatalogError(f"{name} has {meta.num_rows} rows x {meta.num_columns} columns; at most {MAX_CELLS} cells")
    declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if declared > max_bytes():
        raise too_large(name, "expands past")
    texts = [f.name for f in source.schema_arrow if pa.types.is_string(f.type) or pa.types.is_binary(f.type)
             or pa.types.is_large_string(f.type) or pa.types.is_large_binary(f.type)]
    table = pq.read_table(io.BytesIO(data), read_dictionary=texts or None)
    expanded = 0
    for column in table.columns:
        for chunk in column.chunks:
            if pa.types.is_dictionary(chunk.type):
                lengths = pc.binary_length(chunk.dictionary)
                expanded += (pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0)
            else:
                expanded += chunk.nbytes
        if expanded > max_bytes():
            raise too_large(name, "expands past")
    return table


def check_row_count(rows: int, name: str) -> None:
    if rows > max_rows():
        raise CatalogError(f"{name} has more than {max_rows()} rows; split the catalog, or raise {MAX_ROWS_ENV}")


def bounded_rows(raw_rows: Iterator[RawRow], name: str) -> Iterator[RawRow]:
    """The rows, refused (one line) past ``max_rows()``."""
    limit = max_rows()
    for count, raw in enumerate(raw_rows, start=1):
        if count > limit:
            check_row_count(count, name)
        yield raw


def json_loads(text: str, name: str, where: str) -> Any:
    """``json.loads`` with nesting refused past ``MAX_JSON_DEPTH`` (one line, never a
    ``RecursionError``); ``json.JSONDecodeError`` passes through for the caller's message."""
    import json

    depth = _max_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise CatalogError(f"{name}: {where} nests JSON {depth} levels deep; at most {MAX_JSON_DEPTH} are read")
    try:
        return json.loads(text)
    except RecursionError:  # pragma: no cover - _max_depth refuses these first
        raise CatalogError(f"{name}: {where} nests JSON too deeply") from None


def _max_depth(text: str) -> int:
    """The deepest ``[``/``{`` nesting outside strings (a scan; no parsing, no recursion).
    Runs on the text without its string literals, so only brackets are left to count."""
    import re

    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return 0
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", text)
    depth = deepest = 0
    for match in re.finditer(r"[\[\]{}]", bare):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                return deepest
        else:
            depth -= 1
    return deepest
