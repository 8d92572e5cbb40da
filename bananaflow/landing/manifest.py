"""The run manifest: one row per (SKU, variant) saying what happened and where the image is.

Written as CSV (for people and spreadsheets) and Parquet (for pandas/DuckDB and the next
delta run) with the same columns in the same order and fixed dtypes, so a manifest from
an empty or all-failed run still has the schema a reader expects.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from bananaflow.errors import StorageError
from bananaflow.landing import csv_safe
from bananaflow.landing.keys import join_key
from bananaflow.landing.storage import ImageStore, make_s3_client

if TYPE_CHECKING:
    from bananaflow.landing.outcome import ItemOutcome

STATUSES = (
    "succeeded", "failed", "blocked", "deferred", "skipped_exists", "spooled", "qa_failed", "skipped_unchanged",
    # the quality gate's (``bananaflow.landing.verdict``): kept under review/, never published
    "needs_review", "unchecked", "rejected",
)


@dataclass(slots=True)
class ManifestRow:
    """One (SKU, variant) outcome. Empty strings and None mean "not applicable".

    A run keeps one row per item until the manifest is written, so rows have slots and no
    per-instance ``__dict__`` (a 30-field dict is about 1 KB of every row of a 10,000-item run).
    """

    run_id: str
    row_number: int | None
    sku: str
    variant: str
    status: str
    error_class: str = ""
    error_message: str = ""
    key: str = ""
    uri: str = ""
    model: str = ""
    endpoint: str = ""
    image_size: str = ""
    aspect_ratio: str = ""
    mime_type: str = ""
    bytes: int | None = None
    width: int | None = None
    height: int | None = None
    latency_s: float | None = None
    attempts: int | None = None
    prompt_tokens: int | None = None
    image_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    prompt_sha256: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    mode: str = ""  # "realtime" or "batch": how the image was (or was to be) made
    batch_name: str = ""  # the provider's batch ("batches/..."), in batch mode
    qa: str = ""  # JSON: the output preset's measured numbers
    derivatives: str = ""  # JSON: {derivative name: object key} stored beside ``key``
    task_run_id: str = ""  # the Prefect task run that made it: where its logs are (``bananaflow find``)
    retryable: bool = False  # a failure that running the item again may fix (a retried chunk does)
    verdicts: str = ""  # JSON list: the quality gate's verdicts, in order (free checks, judge, a person)
    qa_attempts: int | None = None  # regenerations the gate made after failed checks
    qa_reasons: str = ""  # why the last failed verdict failed ("check: reason; ...")
    judge_cost_usd: float | None = None  # the judge calls' share of ``cost_usd``

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"manifest status {self.status!r} is not one of {', '.join(STATUSES)}")
        for name in ("started_at", "finished_at"):
            setattr(self, name, _as_utc(getattr(self, name)))

    @classmethod
    def from_outcome(cls, item: ItemFacts, outcome: ItemOutcome, *, run_id: str) -> ManifestRow:
        """The one way a run describes an item: its facts from the plan, the rest from what
        happened to it."""
        stored = outcome.stored
        usage = outcome.usage
        billed = bool(outcome.charges) or outcome.recorded_cost_usd is not None
        return cls(
            run_id=run_id,
            row_number=item.row_number,
            sku=item.sku,
            variant=item.variant,
            status=outcome.status,
            error_class=outcome.error_class,
            error_message=outcome.error_message,
            key=stored.key if stored else "",
            uri=stored.uri if stored else "",
            model=outcome.model or item.model,
            endpoint=outcome.endpoint,
            image_size=item.image_size,
            aspect_ratio=item.aspect_ratio,
            mime_type=stored.mime_type if stored else "",
            bytes=stored.bytes if stored else None,
            width=stored.width if stored else None,
            height=stored.height if stored else None,
            latency_s=outcome.latency_s,
            attempts=outcome.attempts,
            prompt_tokens=usage.prompt_tokens if usage else None,
            image_tokens=usage.image_tokens if usage else None,
            output_tokens=usage.candidates_tokens + usage.thoughts_tokens if usage else None,
            cost_usd=outcome.cost_usd if billed else None,
            prompt_sha256=item.prompt_sha256,
            started_at=outcome.started_at,
            finished_at=outcome.finished_at,
            mode=outcome.mode,
            batch_name=outcome.batch_name,
            qa=outcome.qa,
            derivatives=json.dumps(stored.derivatives, sort_keys=True) if stored and stored.derivatives else "",
            retryable=outcome.retryable,
            verdicts=json.dumps([v.to_dict() for v in outcome.verdicts], sort_keys=True, ensure_ascii=False)
            if outcome.verdicts else "",
            qa_attempts=outcome.qa_attempts if outcome.verdicts else None,
            qa_reasons=outcome.qa_reasons,
            judge_cost_usd=outcome.judge_cost_usd if outcome.verdicts else None,
        )


class ItemFacts(Protocol):
    """What a manifest row needs of a planned item (``bananaflow.planning.work.WorkItem``)."""

    @property
    def row_number(self) -> int | None: ...
    @property
    def sku(self) -> str: ...
    @property
    def variant(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def image_size(self) -> str: ...
    @property
    def aspect_ratio(self) -> str: ...
    @property
    def prompt_sha256(self) -> str: ...


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ManifestRow))
#: A row's values in ``COLUMNS`` order (a tuple, no copies).
row_values = attrgetter(*COLUMNS)
#: Columns added after the first release: a manifest written before them still reads.
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "mode", "batch_name", "qa", "derivatives", "task_run_id", "retryable",
    "verdicts", "qa_attempts", "qa_reasons", "judge_cost_usd",
)
_INT = ("row_number", "bytes", "width", "height", "attempts", "prompt_tokens", "image_tokens", "output_tokens",
        "qa_attempts")
_FLOAT = ("latency_s", "cost_usd", "judge_cost_usd")
_TIME = ("started_at", "finished_at")
_BOOL = ("retryable",)
_STR = tuple(c for c in COLUMNS if c not in _INT + _FLOAT + _TIME + _BOOL)
DTYPES: dict[str, str] = {
    **{c: "string" for c in _STR},
    **{c: "boolean" for c in _BOOL},
    **{c: "Int64" for c in _INT},
    **{c: "Float64" for c in _FLOAT},
    **{c: "datetime64[us, UTC]" for c in _TIME},
}


def _as_utc(value: Any) -> datetime | None:
    """Timestamps are stored as aware UTC; naive ones are taken to be UTC already."""
    if value is None or value == "" or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        raise TypeError(f"timestamp expected, got {type(value).__name__}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def manifest_frame(rows: Iterable[ManifestRow]) -> pd.DataFrame:
    """The manifest as a DataFrame with ``COLUMNS`` in order and ``DTYPES``, even when empty."""
    # attribute tuples, not ``dataclasses.asdict``: asdict deep-copies every value, and was
    # a fifth of a whole run's CPU when the manifest of a large run was written
    records = [row_values(r) for r in rows]
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    for column, dtype in DTYPES.items():
        if dtype == "datetime64[us, UTC]":
            frame[column] = pd.to_datetime(frame[column], utc=True).astype(dtype)
        elif dtype == "string":
            frame[column] = frame[column].fillna("").astype(dtype)
        else:
            frame[column] = frame[column].astype(dtype)
    return frame


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    # spreadsheet-safe: a SKU "=HYPERLINK(...)" stays text in Excel
    return csv_safe.frame_to_csv(frame, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ").encode("utf-8")


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine="pyarrow", index=False)
    return buffer.getvalue()


def write_manifest(rows: Iterable[ManifestRow], store: ImageStore, run_key_prefix: str) -> dict[str, str]:
    """Upload ``manifest.csv`` and ``manifest.parquet`` under ``run_key_prefix``; returns
    ``{"csv": uri, "parquet": uri}``.

    Like every ImageStore key, ``run_key_prefix`` is a full key prefix (build it with
    ``store.key("runs", run_id)``): the store's prefix is not added a second time.
    """
    frame = manifest_frame(rows)
    uris: dict[str, str] = {}
    for kind, data, content_type in (
        ("csv", _csv_bytes(frame), "text/csv; charset=utf-8"),
        ("parquet", _parquet_bytes(frame), "application/vnd.apache.parquet"),
    ):
        key = join_key(run_key_prefix, f"manifest.{kind}")
        store.put_bytes(key, data, content_type)
        uris[kind] = store.uri(key)
    return uris


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file and rename, so a crash never leaves half a manifest behind."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_local(rows: Iterable[ManifestRow], directory: Path | str) -> dict[str, Path]:
    """Write ``manifest.csv`` and ``manifest.parquet`` into ``directory`` (created if needed)."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    frame = manifest_frame(rows)
    paths = {"csv": target / "manifest.csv", "parquet": target / "manifest.parquet"}
    _atomic_write(paths["csv"], _csv_bytes(frame))
    _atomic_write(paths["parquet"], _parquet_bytes(frame))
    return paths


def _read_source(source: str | Path) -> tuple[bytes, str]:
    text = str(source)
    if text.startswith("s3://"):
        bucket, _, key = text[5:].partition("/")
        if not bucket or not key:
            raise StorageError(f"manifest location {text!r} is not s3://bucket/key")
        return ImageStore(bucket, client=make_s3_client()).get_bytes(key), key
    return Path(text).read_bytes(), text


def _frame_from_csv(data: bytes) -> pd.DataFrame:
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    frame = csv_safe.unneutralise_frame(frame)
    for column in OPTIONAL_COLUMNS:
        if column not in frame.columns:
            frame[column] = ""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"not a bananaflow manifest: missing columns {', '.join(missing)}")
    out = pd.DataFrame(index=frame.index)
    for column, dtype in DTYPES.items():
        values = frame[column].replace("", None)
        if dtype == "string":
            out[column] = frame[column].astype(dtype)
        elif dtype == "datetime64[us, UTC]":
            out[column] = pd.to_datetime(values, utc=True, format="ISO8601").astype(dtype)
        elif dtype == "boolean":
            out[column] = frame[column].str.lower().isin(("true", "1")).astype(dtype)
        else:
            out[column] = pd.to_numeric(values).astype(dtype)
    return out


def read_manifest(source: str | Path, *, sku: str | None = None) -> list[ManifestRow]:
    """Rows of a manifest written by ``write_manifest``/``write_local`` (CSV or Parquet,
    local path or s3:// URI), so a delta run can skip what already succeeded. With ``sku``,
    only that product's rows (a Parquet manifest is filtered while it is read, so looking up
    one product in a 100,000-row manifest builds a handful of rows, not all of them)."""
    return list(iter_manifest(source, sku=sku))


#: Rows built from the read table at a time by ``iter_manifest``.
_ROW_SLICE = 2000


def iter_manifest(source: str | Path, *, sku: str | None = None) -> Iterator[ManifestRow]:
    """``read_manifest``'s rows one at a time: the table is read whole, but its rows are
    built a slice at a time, so a caller that keeps few of them holds few."""
    data, name = _read_source(source)
    if data[:4] == b"PAR1" or name.endswith(".parquet"):
        filters = [("sku", "==", sku)] if sku is not None else None
        frame = pd.read_parquet(io.BytesIO(data), engine="pyarrow", filters=filters)
        for column in OPTIONAL_COLUMNS:
            if column not in frame.columns:
                frame[column] = "" if DTYPES[column] in ("string", "boolean") else None
    else:
        frame = _frame_from_csv(data)
        if sku is not None:
            frame = frame[frame["sku"] == sku]
    del data
    frame = frame[list(COLUMNS)]
    for start in range(0, len(frame), _ROW_SLICE):
        for record in frame.iloc[start : start + _ROW_SLICE].to_dict("records"):
            yield _row_from_record(record)


def _row_from_record(record: dict[str, Any]) -> ManifestRow:
    clean: dict[str, Any] = {}
    for column, value in record.items():
        if column in _BOOL:
            clean[column] = value is True or str(value).lower() in ("true", "1")
        elif value is None or value is pd.NA or value is pd.NaT or (value == "" and column not in _STR):
            clean[column] = "" if column in _STR else None
        elif column in _INT:
            clean[column] = int(value)
        elif column in _FLOAT:
            clean[column] = float(value)
        elif column in _TIME:
            clean[column] = _as_utc(value)
        else:
            clean[column] = str(value)
    return ManifestRow(**clean)
