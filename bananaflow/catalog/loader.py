"""Loading a merchant's catalog into validated rows, every value a string.

Catalogs come from spreadsheets and feed exports: CSV with or without a BOM, TSV (Google
Merchant), JSON Lines, Parquet, Excel. Everything is read as text so a SKU ``00123``
stays ``00123`` and a price ``9.90`` is not turned into ``9.9``.

Two kinds of problem are kept apart on purpose. A file that cannot be read at all (missing,
empty, binary, no ``sku`` column) raises ``CatalogError`` saying what was expected. A bad
*row* (no SKU, duplicate SKU, empty title, a field too long, a broken CSV line) becomes a
``Rejection`` with the line number the merchant sees in their editor, and the rest of the
catalog still runs: one typo must not block 10,000 products.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from bananaflow.catalog import feeds, read_limits, shopify
from bananaflow.catalog.encoding import DecodedLines, decode_catalog
from bananaflow.catalog.rows import RawRow
from bananaflow.catalog.text import DESCRIPTION_COLUMNS, text_length
from bananaflow.catalog.xml_feeds import looks_like_xml, parse_xml_feed
from bananaflow.errors import CatalogError, StorageError
from bananaflow.landing import csv_safe

_DELIMITERS = (",", "\t", ";", "|")
_EXCEL_MAGIC = b"PK\x03\x04"
_CSV_FIELD_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class CatalogRow:
    """One accepted product. ``fields`` holds every column by name (values stripped, missing
    values as ""), so templates can use any column the merchant has."""

    row_number: int
    sku: str
    fields: dict[str, str] = field(hash=False)


@dataclass(frozen=True)
class Rejection:
    """A row that will not be generated, and why, in words a merchant can act on."""

    row_number: int
    sku: str
    reason: str


@dataclass(kw_only=True)
class CatalogRead:
    """What reading one catalog found besides its accepted rows."""

    rejected: list[Rejection]
    columns: list[str]
    source: str
    preset: str = ""
    #: Rows left out on purpose (drafts, archived, app pseudo-products), with why; counted, not rejected.
    skipped: list[Rejection] = field(default_factory=list)


@dataclass(kw_only=True)
class CatalogLoad(CatalogRead):
    """The outcome of reading one catalog whole."""

    accepted: list[CatalogRow]

    def to_frame(self) -> pd.DataFrame:
        """Accepted rows as a string-typed DataFrame (``row_number`` first)."""
        records = [{"row_number": r.row_number, **r.fields} for r in self.accepted]
        frame = pd.DataFrame.from_records(records, columns=["row_number", *self.columns])
        return frame.astype({c: "string" for c in self.columns})


# -- reading bytes -------------------------------------------------------------------------
def _read_bytes(source: str) -> bytes:
    if source.startswith("s3://"):
        return _read_s3(source)
    path = Path(source).expanduser()
    if not path.exists():
        raise CatalogError(f"catalog {source} does not exist")
    if path.is_dir():
        raise CatalogError(f"catalog {source} is a directory; expected a CSV, TSV, JSONL or Parquet file")
    return read_limits.read_local(source, path)


def _read_s3(uri: str) -> bytes:
    """A catalog that cannot be read is a ``CatalogError``, whatever S3 said."""
    try:
        return read_limits.read_s3(uri)
    except StorageError as exc:
        raise CatalogError(f"cannot read catalog {uri}: {exc.message}") from None


def _decode(data: bytes, name: str, encoding: str | None) -> str:
    """UTF-8 (BOM or not), UTF-16 with a BOM, or the encoding detection agrees on; a file
    whose encoding cannot be told for sure is an error naming ``--encoding``, never mojibake
    (see ``catalog.encoding``)."""
    return decode_catalog(data, name, encoding)


def _kind(name: str, data: bytes) -> str:
    """File format from content first (a Parquet file named .csv is still Parquet), then
    from the extension, then by sniffing the first line."""
    if data[:4] == b"PAR1":
        return "parquet"
    if data[:4] == _EXCEL_MAGIC:
        return "excel"
    suffix = PurePosixPath(name.lower()).suffix
    if suffix in (".xml", ".rss", ".atom") or looks_like_xml(data):
        return "xml"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "json"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    if suffix == ".parquet":
        return "parquet"
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] in (b"{", b"["):
        return "json"
    return "csv"


# -- parsers -------------------------------------------------------------------------------
def _text_value(value: Any) -> str:
    """Any parsed value as catalog text: None/NaN become "", integers stay integers."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is pd.NA or value is pd.NaT:
        return ""
    return str(value)


def _header(names: list[str], name: str) -> list[str]:
    header = [h.strip().lstrip("\ufeff") for h in names]
    seen: set[str] = set()
    for column in header:
        if column and column in seen:
            raise CatalogError(f"{name} has the column '{column}' twice; rename one of them")
        seen.add(column)
    return header


def _sniff_delimiter(first_line: str, kind: str) -> str:
    if kind == "tsv":
        return "\t"
    counts = {d: first_line.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _parse_delimited(source: DecodedLines, name: str, kind: str) -> tuple[list[str], Iterator[RawRow]]:
    """CSV/TSV via the csv module, which reports the line each record starts on (pandas does
    not), so a rejection points at the line the merchant sees, even after quoted newlines.
    Lines are decoded as the reader asks for them."""
    lines_read = iter(source)
    first = next(lines_read, "")
    delimiter = _sniff_delimiter(first.removesuffix("\n"), kind)
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    reader = csv.reader(itertools.chain([first], lines_read), delimiter=delimiter, strict=True)
    consumed = 0
    header: list[str] | None = None
    try:
        for record in reader:
            consumed = reader.line_num
            if any(cell.strip() for cell in record):
                header = _header(record, name)
                break
    except csv.Error as exc:
        raise CatalogError(f"{name} line {reader.line_num}: the header cannot be read ({exc})") from None
    if header is None:
        raise CatalogError(f"{name} is empty; expected a header line such as 'sku,title,description'")
    lines: list[str] = []

    def first_cell(line_number: int) -> str:
        """Best-effort SKU of a line the csv module gave up on, for the rejection report."""
        if not lines:
            lines.extend(re.split(r"\r\n|\r|\n", source.text()))
        line = lines[line_number - 1] if 0 < line_number <= len(lines) else ""
        if header and header[0] == "sku":
            return line.split(delimiter, 1)[0].strip().strip('"')
        return ""

    def rows() -> Iterator[RawRow]:
        nonlocal consumed
        while True:
            start = consumed + 1
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # strict mode: stray or unclosed quotes; reading goes on
                consumed = reader.line_num
                yield RawRow(start, {"sku": first_cell(start)}, _quote_problem(str(exc), start, consumed))
                continue
            consumed = reader.line_num
            if not any(cell.strip() for cell in record):
                continue  # blank lines are common at the end of hand-edited files
            record = _fit(record, len(header), start == consumed)
            if len(record) != len(header):
                yield RawRow(start, _zip(header, record), _shape_problem(record, header, start, consumed))
                continue
            yield RawRow(start, _zip(header, record))

    return [h for h in header if h], rows()


def _fit(record: list[str], width: int, one_line: bool) -> list[str]:
    """Trailing empty fields (``a,b,,,`` from spreadsheets) are no problem: cut them off, and
    pad a one-line record that stops early (editors drop trailing empty fields)."""
    if len(record) > width and not any(cell.strip() for cell in record[width:]):
        return record[:width]
    if len(record) < width and one_line:
        return record + [""] * (width - len(record))
    return record


def _quote_problem(error: str, start: int, end: int) -> str:
    if "unexpected end of data" in error:
        return f"a quote opened on line {start} is never closed, so lines {start}-{end} could not be read"
    return f"line cannot be parsed ({error}); double any quote inside a quoted value"


def _zip(header: list[str], record: list[str]) -> dict[str, str]:
    """Values by column; short values are interned, since exports repeat them on every row
    ("in stock", a brand, a currency) and a 100 MB export has millions of them."""
    values = {h: (record[i] if i < len(record) else "") for i, h in enumerate(header) if h}
    return {k: _intern(v.strip()) for k, v in values.items()}


def _intern(value: str) -> str:
    return sys.intern(value) if len(value) <= 24 else value


def _shape_problem(record: list[str], header: list[str], start: int, end: int) -> str:
    reason = f"line has {len(record)} fields but the header has {len(header)}"
    if end > start:
        return reason + f"; a quoted value runs from line {start} to {end} — is a closing quote missing?"
    if len(record) > len(header):
        return reason + "; quote values that contain the delimiter"
    return reason


def _parse_json(text: str, name: str) -> tuple[list[str], Iterator[RawRow]]:
    """JSON Lines (one object per line, numbered by line) or one JSON array of objects."""
    records: list[tuple[int, Any, str]] = []
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = read_limits.json_loads(stripped, name, "the array")
        except json.JSONDecodeError as exc:
            raise CatalogError(f"{name} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
        records = [(i + 1, item, "") for i, item in enumerate(items)]
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((number, read_limits.json_loads(line, name, f"line {number}"), ""))
            except json.JSONDecodeError as exc:
                records.append((number, None, f"line is not valid JSON ({exc.msg} at column {exc.colno})"))
    if not records:
        raise CatalogError(f"{name} is empty; expected one JSON object per line with 'sku' and 'title'")
    if all(problem for _, _, problem in records):
        raise CatalogError(f"{name} is not JSON Lines: no line parses as a JSON object")
    columns: dict[str, None] = {}
    for _, obj, _ in records:
        if isinstance(obj, dict):
            columns.update((str(k).strip(), None) for k in obj)

    def rows() -> Iterator[RawRow]:
        for number, obj, problem in records:
            if problem:
                yield RawRow(number, {}, problem)
            elif not isinstance(obj, dict):
                yield RawRow(number, {}, f"line holds a JSON {type(obj).__name__}, not an object")
            else:
                values = {str(k).strip(): _text_value(v).strip() for k, v in obj.items()}
                yield RawRow(number, {c: values.get(c, "") for c in columns})

    return list(columns), rows()


def _parse_table(frame_rows: list[dict[str, Any]], columns: list[str]) -> tuple[list[str], Iterator[RawRow]]:
    """Parquet and Excel: numbered as a spreadsheet shows them, header = row 1."""
    header = _header(columns, "catalog")

    def rows() -> Iterator[RawRow]:
        for index, record in enumerate(frame_rows):
            values = {h: _text_value(record.get(orig)).strip() for h, orig in zip(header, columns) if h}
            if any(values.values()):
                yield RawRow(index + 2, values)

    return [h for h in header if h], rows()


def _parse_parquet(data: bytes, name: str) -> tuple[list[str], Iterator[RawRow]]:

    try:
        table = read_limits.read_parquet(data, name)
    except CatalogError:
        raise
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise CatalogError(f"{name} is not a readable Parquet file: {str(exc)[:200]}") from None
    # pyarrow, not pandas: an integer column with nulls must not come back as 123.0
    return _parse_table(table.to_pylist(), [str(c) for c in table.column_names])


def _parse_excel(data: bytes, name: str) -> tuple[list[str], Iterator[RawRow]]:
    read_limits.check_zip(data, name)
    try:
        frame = pd.read_excel(io.BytesIO(data), dtype=str, keep_default_na=False, sheet_name=0)
    except Exception as exc:
        raise CatalogError(f"{name} is not a readable Excel workbook: {str(exc)[:200]}") from None
    return _parse_table(frame.to_dict("records"), [str(c) for c in frame.columns])


# -- validation ----------------------------------------------------------------------------
#: Columns holding photo locations, checked per row so a broken link is a rejection with its
#: row number rather than a failed fetch hours later.
LINK_COLUMNS = ("image_link", "additional_image_link")
_SCHEMES = ("http", "https", "s3")


def split_links(value: str) -> list[str]:
    """``additional_image_link`` holds up to 10 links separated by commas."""
    return [part.strip() for part in value.split(",") if part.strip()]


def link_problem(link: str) -> str | None:
    """Why ``link`` cannot be a product photo location, or None. Accepted: http(s) URLs,
    ``s3://bucket/key`` and local paths (relative to the catalog's folder)."""
    if any(c.isspace() for c in link):
        return "contains whitespace; percent-encode spaces as %20"
    scheme, sep, rest = link.partition("://")
    if not sep:
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:(?![\\/])", link) and not re.match(r"^[a-zA-Z]:[\\/]", link):
            return "is not an http(s) URL, s3://bucket/key or a file path"
        return None
    if scheme.lower() not in _SCHEMES:
        return f"scheme '{scheme}' is not supported; use http(s)://, s3:// or a file path"
    host, _, path = rest.partition("/")
    if not host:
        return "has no host"
    if scheme.lower() == "s3" and not path:
        return "is not s3://bucket/key"
    return None


def _missing_columns_error(name: str, columns: list[str], required: tuple[str, ...]) -> CatalogError | None:
    missing = [c for c in required if c not in columns]
    if not missing:
        return None
    found = ", ".join(columns) if columns else "(no columns)"
    lowered = {c.lower(): c for c in columns}
    hints = [f"'{lowered[m.lower()]}' differs only in case" for m in missing if m.lower() in lowered]
    what = " or ".join(f"'{m}'" for m in missing)
    noun = "column" if len(missing) == 1 else "columns"
    message = f"{name} has no {what} {noun}; found: {found} — rename a column or map it"
    if hints:
        message += f" ({'; '.join(hints)})"
    elif _looks_like_data(columns):
        message = (f"{name} seems to have no header line (its first line is data: {found[:80]}); "
                   "add a header line such as 'sku,title,price' as the first line")
    return CatalogError(message)


def _looks_like_data(columns: list[str]) -> bool:
    """A first line of values, not names: numbers, prices, or very long cells."""
    data_like = [c for c in columns if re.fullmatch(r"[-+]?[\d.,]+", c) or len(c) > 60]
    return bool(columns) and len(data_like) * 2 >= len(columns)


#: A description is truncated in the prompt, not rejected, unless it is absurdly long (hostile).
_DESCRIPTION_CAP = 20


def _length_problem(column: str, value: str, limit: int) -> str:
    """Limits count the text a person reads (HTML stripped); a long description is cut in
    the prompt at a sentence or word boundary instead of rejecting the product."""
    if len(value) <= limit:
        return ""
    if column in DESCRIPTION_COLUMNS:
        cap = limit * _DESCRIPTION_CAP
        return "" if len(value) <= cap else f"{column} is {len(value)} characters; the limit is {cap}"
    length = text_length(value)
    return f"{column} is {length} characters; the limit is {limit}" if length > limit else ""


def _validate(
    raw_rows: Iterator[RawRow],
    required: tuple[str, ...],
    max_field_chars: int,
    field_limits: Mapping[str, int],
    rejected: list[Rejection],
    skipped: list[Rejection] | None = None,
) -> Iterator[CatalogRow]:
    """Accepted rows as they are read; rejected (and skipped) rows go to the given lists."""
    first_seen: dict[str, int] = {}
    for raw in raw_rows:
        sku = raw.values.get("sku", "")
        if raw.skip and skipped is not None:
            skipped.append(Rejection(raw.row_number, sku, raw.skip))
            continue
        if raw.problem:
            rejected.append(Rejection(raw.row_number, sku, raw.problem))
            continue
        reasons: list[str] = []
        if not sku:
            reasons.append("missing sku")
        elif sku in first_seen:
            reasons.append(f"duplicate sku '{sku}' (first on row {first_seen[sku]})")
        for column in required:
            if column != "sku" and not raw.values.get(column, ""):
                reasons.append(f"empty {column}")
        for column, value in raw.values.items():
            reason = _length_problem(column, value, field_limits.get(column, max_field_chars))
            if reason:
                reasons.append(reason)
        for column in LINK_COLUMNS:
            if raw.values.get(column, "").lstrip().startswith("//"):  # protocol-relative: a web link
                raw.values[column] = ",".join("https:" + link if link.startswith("//") else link
                                              for link in split_links(raw.values[column]))
            for link in split_links(raw.values.get(column, "")) if column in raw.values else ():
                problem = link_problem(link)
                if problem:
                    reasons.append(f"bad {column} {link[:80]!r}: {problem}")
        if reasons:
            rejected.append(Rejection(raw.row_number, sku, "; ".join(reasons)))
            continue
        first_seen[sku] = raw.row_number
        yield CatalogRow(raw.row_number, sku, dict(raw.values))


def read_catalog_bytes(source: str) -> tuple[bytes, str]:
    """The catalog's bytes (gunzipped) and its file name without ``.gz``."""
    name = PurePosixPath(source).name or source
    data = _read_bytes(source)
    if data[:2] == b"\x1f\x8b":
        data = read_limits.gunzip(data, name)
        name = name.removesuffix(".gz")
    return data, name


def decode_text(data: bytes, name: str, encoding: str | None = None) -> str:
    """Catalog bytes as text, with the same detection ``load_catalog`` uses."""
    return _decode(data, name, encoding)


@dataclass(kw_only=True)
class CatalogStream(CatalogRead):
    """A catalog being read: iterating it yields accepted products one at a time, counted in
    ``accepted``, while ``rejected``/``skipped`` fill up (complete once it is exhausted), so a
    100,000-row catalog is planned without holding every row."""

    rows: Iterator[CatalogRow]
    accepted: int = 0

    def __iter__(self) -> Iterator[CatalogRow]:
        for row in self.rows:
            self.accepted += 1
            yield row


def load_catalog(source: str, **reading: Any) -> CatalogLoad:
    """Read and validate a whole catalog (see ``open_catalog`` for the options)."""
    stream = open_catalog(source, **reading)
    return CatalogLoad(accepted=list(stream), **{f.name: getattr(stream, f.name) for f in fields(CatalogRead)})


def open_catalog(
    source: str,
    *,
    encoding: str | None = None,
    required: tuple[str, ...] = ("sku", "title"),
    max_field_chars: int = 5000,
    rename: Mapping[str, str] | None = None,
    preset: str | None = None,
    include_unpublished: bool = False,
    sku_from: str | None = None,
) -> CatalogStream:
    """Open and check a catalog from a local path or ``s3://bucket/key``; its rows are
    validated as they are read.

    ``rename`` maps the file's column names to ours (``{"id": "sku", "Title": "title"}``),
    for feeds whose columns we should not ask the merchant to edit. ``preset`` (``shopify``,
    ``merchant``) maps a known export onto our fields; without one, a file with no ``sku``
    column is recognised as a Shopify or Merchant Center export by its columns.
    ``"none"`` turns recognition off. Drafts, archived and unpublished products and app
    pseudo-products (shipping protection, gift cards) are counted in ``skipped`` and not
    generated unless ``include_unpublished``. ``sku_from`` names a column whose value, made
    into a slug, is the SKU of a list that has none (scraped lists, supplier sheets).
    """
    source = str(source)
    data, name = read_catalog_bytes(source)
    if not data or data.isspace():  # isspace, not strip: no copy of a 100 MB file
        raise CatalogError(f"{name} is empty; expected a header line such as 'sku,title,description'")
    kind = _kind(name, data)
    if kind == "parquet":
        columns, raw_rows = _parse_parquet(data, name)
    elif kind == "excel":
        columns, raw_rows = _parse_excel(data, name)
    elif kind == "xml":
        columns, raw_rows = parse_xml_feed(data, name)
    elif kind == "json":
        text = _decode(data, name, encoding)
        del data  # the bytes are not needed once decoded: half the peak memory of a big export
        columns, raw_rows = _parse_json(text, name)
    else:  # CSV/TSV: the bytes are kept and decoded as rows are read, never as one text
        columns, raw_rows = _parse_delimited(DecodedLines(data, name, encoding), name, kind)
    raw_rows = read_limits.bounded_rows(raw_rows, name)
    feed = feeds.choose_preset(preset, columns, dict(rename or {}), name)
    field_limits: dict[str, int] = {}
    if feed is not None:
        columns, raw_rows = feed.apply(columns, raw_rows, name)
        field_limits = dict(feed.field_limits)
    if rename:
        mapping = shopify.translate_mapping(rename, columns) if feed is feeds.PRESETS["shopify"] else dict(rename)
        columns, raw_rows = _renamed(columns, raw_rows, mapping, name)
    if sku_from:
        columns, raw_rows = _sku_from(columns, raw_rows, sku_from, name)
    error = _missing_columns_error(name, columns, required)
    if error:
        raise error
    rejected: list[Rejection] = []
    skipped: list[Rejection] = []
    rows = _validate(raw_rows, required, max_field_chars, field_limits, rejected,
                     None if include_unpublished else skipped)
    return CatalogStream(rows=rows, rejected=rejected, columns=columns, source=source,
                         preset=feed.name if feed else "", skipped=skipped)


def _renamed(
    columns: list[str], raw_rows: Iterator[RawRow], mapping: dict[str, str], name: str
) -> tuple[list[str], Iterator[RawRow]]:
    """``mapping`` is {file column: our column}. A mapped column replaces a column that
    already has the target name (``sku`` = "Variant SKU" wins over a preset's ``sku``)."""
    missing = [source for source in mapping if source not in columns]
    if missing:
        found = ", ".join(columns)
        raise CatalogError(f"{name} has no column '{missing[0]}' to map; found: {found}")
    replaced = {target for source, target in mapping.items() if target != source} - set(mapping)
    new_columns = [mapping.get(c, c) for c in columns if c not in replaced]
    if len(set(new_columns)) != len(new_columns):
        raise CatalogError(f"renaming the columns of {name} would give two columns the same name")

    def rows() -> Iterator[RawRow]:
        for raw in raw_rows:
            values = {k: v for k, v in raw.values.items() if k not in replaced}
            yield RawRow(raw.row_number, {mapping.get(k, k): v for k, v in values.items()}, raw.problem, raw.skip)

    return new_columns, rows()


def sku_slug(value: str) -> str:
    """A stable SKU made from a title or a link: ``https://x/p/blue-mug?v=2`` → ``blue-mug``."""
    text = value.strip()
    if "://" in text or text.startswith("//"):
        path = text.split("://", 1)[-1].lstrip("/").split("?", 1)[0].split("#", 1)[0]
        parts = [p for p in path.split("/")[1:] if p]
        text = parts[-1] if parts else path
    slug = re.sub(r"[^\w]+", "-", text.lower(), flags=re.UNICODE).strip("-_")
    return slug[:64].rstrip("-_")


def _sku_from(
    columns: list[str], raw_rows: Iterator[RawRow], column: str, name: str
) -> tuple[list[str], Iterator[RawRow]]:
    """``--sku-from COLUMN``: the SKU made from a column, for lists that have none."""
    if column not in columns:
        raise CatalogError(f"--sku-from {column}: {name} has no such column; found: {', '.join(columns)}")

    def rows() -> Iterator[RawRow]:
        for raw in raw_rows:
            values = dict(raw.values)
            if not values.get("sku"):
                values["sku"] = sku_slug(values.get(column, ""))
            yield RawRow(raw.row_number, values, raw.problem, raw.skip)

    return (columns if "sku" in columns else ["sku", *columns]), rows()


def rejections_to_csv(rejected: list[Rejection]) -> bytes:
    """The rejection report (row_number, sku, reason) as UTF-8 CSV for the merchant."""
    buffer = io.StringIO(newline="")
    writer = csv_safe.writer(buffer, lineterminator="\n")  # spreadsheet-safe cells
    writer.writerow(["row_number", "sku", "reason"])
    for item in rejected:
        writer.writerow([item.row_number, item.sku, item.reason])
    return buffer.getvalue().encode("utf-8")
