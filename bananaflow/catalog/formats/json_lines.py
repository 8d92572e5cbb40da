"""JSON catalogs: JSON Lines (one object per line, numbered by line; a broken line is one
rejection) or one JSON array of objects. Nesting is bounded by ``read_limits.json_loads``.

Nothing is materialised whole: a first pass decodes one record at a time to learn the
columns and count rows (the row limit applies while reading, so 24 MB of ``{}`` is refused
at the limit, not after building 8 million dicts), and the rows are decoded again, one at a
time, as they are used. Only the text and the column names stay in memory.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from bananaflow.catalog import read_limits
from bananaflow.catalog.formats.values import text_value
from bananaflow.catalog.rows import Parsed, RawRow, Rows
from bananaflow.catalog.source import CatalogFile
from bananaflow.errors import CatalogError

#: (line or position, the parsed value, why it could not be parsed or "")
_Record = tuple[int, Any, str]
#: Distinct keys over all objects; a product has dozens, an export a few hundred.
MAX_COLUMNS = 5000
_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")


def parse_json(file: CatalogFile) -> Parsed:
    """Columns (every key any object has, in first-seen order) and rows of a JSON catalog."""
    name = file.name
    text = file.take_text()
    is_array = text.lstrip().startswith("[")
    if is_array:
        depth = read_limits.max_json_depth(text)
        if depth > read_limits.MAX_JSON_DEPTH:
            raise CatalogError(f"{name}: the array nests JSON {depth} levels deep; "
                               f"at most {read_limits.MAX_JSON_DEPTH} are read")
    columns: dict[str, None] = {}
    count = broken = 0
    limit = read_limits.max_rows()
    for _, obj, problem in _records(text, name, is_array):
        count += 1
        if count > limit:
            read_limits.check_row_count(count, name)
        broken += bool(problem)
        if isinstance(obj, dict):
            columns.update((str(k).strip(), None) for k in obj)
            if len(columns) > MAX_COLUMNS:
                raise CatalogError(f"{name} has more than {MAX_COLUMNS} distinct keys; a catalog needs far fewer")
    if not count:
        raise CatalogError(f"{name} is empty; expected one JSON object per line with 'sku' and 'title'")
    if broken == count:
        raise CatalogError(f"{name} is not JSON Lines: no line parses as a JSON object")
    names = list(columns)

    def rows() -> Rows:
        for number, obj, problem in _records(text, name, is_array):
            if problem:
                yield RawRow(number, {}, problem)
            elif not isinstance(obj, dict):
                yield RawRow(number, {}, f"line holds a JSON {type(obj).__name__}, not an object")
            else:
                values = {str(k).strip(): text_value(v).strip() for k, v in obj.items()}
                yield RawRow(number, {c: values.get(c, "") for c in names})

    return names, rows()


def _records(text: str, name: str, is_array: bool) -> Iterator[_Record]:
    return _array_items(text, name) if is_array else _lines(text, name)


def _array_items(text: str, name: str) -> Iterator[_Record]:
    """The array's items numbered from 1, decoded one at a time (``raw_decode``)."""
    try:
        at = _skip(text, _skip(text, 0) + 1)  # past "[" and the blanks after it
        if text[at:at + 1] == "]":
            return
        number = 0
        while True:
            obj, at = _DECODER.raw_decode(text, at)
            number += 1
            yield number, obj, ""
            at = _skip(text, at)
            if text[at:at + 1] == ",":
                at = _skip(text, at + 1)
                continue
            if text[at:at + 1] != "]":
                raise json.JSONDecodeError("Expecting ',' delimiter", text, at)
            if text[_skip(text, at + 1):]:
                raise json.JSONDecodeError("Extra data", text, at + 1)
            return
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{name} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:  # pragma: no cover - the depth scan refuses these first
        raise CatalogError(f"{name}: the array nests JSON too deeply") from None


def _skip(text: str, at: int) -> int:
    """The position after the JSON blanks at ``at``."""
    match = _WS.match(text, at)
    return match.end() if match else at


def _lines(text: str, name: str) -> Iterator[_Record]:
    """Each non-blank line by its line number, found one at a time (no list of lines)."""
    number = 0
    for match in re.finditer(r"[^\r\n]*(?:\r\n|\r|\n)?", text):
        line = match.group()
        if not line:
            break
        number += 1
        if not line.strip():
            continue
        try:
            yield number, read_limits.json_loads(line, name, f"line {number}"), ""
        except json.JSONDecodeError as exc:
            yield number, None, f"line is not valid JSON ({exc.msg} at column {exc.colno})"
