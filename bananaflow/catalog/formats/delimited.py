"""CSV and TSV catalogs, read with the csv module, which reports the line each record starts
on (pandas does not), so a rejection points at the line the merchant sees, even after quoted
newlines. The bytes are decoded a slice at a time as the reader asks for lines, never as one
text. Broken lines are repaired where the intent is plain (trailing empty fields) and become
rejections naming the quote or the field count otherwise; the rest of the file still reads."""
from __future__ import annotations

import csv
import itertools
import re
from typing import TYPE_CHECKING

from bananaflow.catalog.encoding import DecodedLines
from bananaflow.catalog.formats.values import unique_header
from bananaflow.catalog.rows import Parsed, RawRow, Rows
from bananaflow.catalog.source import CatalogFile
from bananaflow.errors import CatalogError

if TYPE_CHECKING:
    from _csv import Reader

#: Delimiters a CSV may use, told apart by how often each is on the first line.
CSV_DELIMITERS = (",", "\t", ";", "|")
#: A TSV (Google Merchant) is tab-separated whatever its first line holds.
TSV_DELIMITERS = ("\t",)
_FIELD_LIMIT = 64 * 1024 * 1024


def parse_delimited(file: CatalogFile, delimiters: tuple[str, ...] = CSV_DELIMITERS) -> Parsed:
    """Columns and rows of a delimited file; ``delimiters`` are the candidates, the first
    one used when the first line holds none of them."""
    lines = DecodedLines(file.data, file.name, file.encoding)
    lines_read = iter(lines)
    first = next(lines_read, "")
    delimiter = _sniff_delimiter(first.removesuffix("\n"), delimiters)
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
    reader = csv.reader(itertools.chain([first], lines_read), delimiter=delimiter, strict=True)
    header, consumed = _read_header(reader, file.name)
    return [h for h in header if h], _rows(reader, header, consumed, _FirstCell(lines, header, delimiter))


def _sniff_delimiter(first_line: str, delimiters: tuple[str, ...]) -> str:
    if len(delimiters) == 1:
        return delimiters[0]
    counts = {d: first_line.count(d) for d in delimiters}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else delimiters[0]


#: A first line of ``key=value`` cells is a marketplace's preamble, not a header
#: (Amazon's ``TemplateType=fptcustom	Version=2021.1014``; eBay's ``Version=1.0.0``).
_PREAMBLE = re.compile(r"^\s*[A-Za-z][A-Za-z_ ]*=")
#: Cells that mark the header row among the lines after a preamble (the attribute names row
#: of an Amazon template, below its row of localised labels).
_HEADER_MARKERS = frozenset({"sku", "item_sku", "seller-sku", "seller_sku", "id", "handle"})
#: Records after a preamble searched for the header row.
_PREAMBLE_LINES = 6


def _read_header(reader: Reader, name: str) -> tuple[list[str], int]:
    """The header and the lines read up to its end: the first non-blank record, or, after a
    marketplace preamble, the first record within ``_PREAMBLE_LINES`` with a SKU-like column."""
    try:
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            if not any(_PREAMBLE.match(cell) for cell in record[:3]):
                return unique_header(record, name), reader.line_num
            return _header_after_preamble(reader, name)
    except csv.Error as exc:
        raise CatalogError(f"{name} line {reader.line_num}: the header cannot be read ({exc})") from None
    raise CatalogError(f"{name} is empty; expected a header line such as 'sku,title,description'")


def _header_after_preamble(reader: Reader, name: str) -> tuple[list[str], int]:
    seen = False
    for _, record in zip(range(_PREAMBLE_LINES), reader, strict=False):
        if not any(cell.strip() for cell in record):
            continue
        if any(cell.strip().lower() in _HEADER_MARKERS for cell in record):
            return unique_header(record, name), reader.line_num
        seen = True
    if not seen:
        raise CatalogError(f"{name} has only a preamble line; expected a header line such as 'sku,title,description'")
    raise CatalogError(
        f"{name} starts with a marketplace preamble but no header row with a SKU column follows within "
        f"{_PREAMBLE_LINES} lines; remove the lines above the header"
    )


def _rows(reader: Reader, header: list[str], consumed: int, first_cell: _FirstCell) -> Rows:
    """Records as rows numbered by the line each starts on; ``consumed`` is the last line read."""
    shared: dict[str, str] = {}
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
            yield RawRow(start, _zip(header, record, shared), _shape_problem(record, header, start, consumed))
            continue
        yield RawRow(start, _zip(header, record, shared))


class _FirstCell:
    """Best-effort SKU of a line the csv module gave up on, for the rejection report. The
    text is split into lines only the first time one is asked for (rare)."""

    def __init__(self, source: DecodedLines, header: list[str], delimiter: str) -> None:
        self.source, self.delimiter = source, delimiter
        self.sku_first = bool(header) and header[0] == "sku"
        self.lines: list[str] = []

    def __call__(self, line_number: int) -> str:
        if not self.lines:
            self.lines.extend(re.split(r"\r\n|\r|\n", self.source.text()))
        line = self.lines[line_number - 1] if 0 < line_number <= len(self.lines) else ""
        if self.sku_first:
            return line.split(self.delimiter, 1)[0].strip().strip('"')
        return ""


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


def _zip(header: list[str], record: list[str], shared: dict[str, str] | None = None) -> dict[str, str]:
    """Values by column; short values are shared, since exports repeat them on every row
    ("in stock", a brand, a currency) and a 100 MB export has millions of them."""
    shared = {} if shared is None else shared
    values = {h: (record[i] if i < len(record) else "") for i, h in enumerate(header) if h}
    return {k: _share(v.strip(), shared) for k, v in values.items()}


#: Distinct short values shared per file. Bounded, unlike ``sys.intern``: a SKU column is short
#: and unique on every row, and a million of them interned would cost more than they save.
#: Values that repeat (a brand, "in stock") show up in the first rows, well within the bound.
SHARED_VALUES = 20_000


def _share(value: str, shared: dict[str, str]) -> str:
    if len(value) > 24:
        return value
    found = shared.get(value)
    if found is not None:
        return found
    if len(shared) < SHARED_VALUES:
        shared[value] = value
    return value


def _shape_problem(record: list[str], header: list[str], start: int, end: int) -> str:
    reason = f"line has {len(record)} fields but the header has {len(header)}"
    if end > start:
        return reason + f"; a quoted value runs from line {start} to {end} — is a closing quote missing?"
    if len(record) > len(header):
        return reason + "; quote values that contain the delimiter"
    return reason
