"""JSON catalogs: JSON Lines (one object per line, numbered by line; a broken line is one
rejection) or one JSON array of objects. Nesting is bounded by ``read_limits.json_loads``."""
from __future__ import annotations

import json
from typing import Any

from bananaflow.catalog import read_limits
from bananaflow.catalog.formats.values import text_value
from bananaflow.catalog.rows import Parsed, RawRow, Rows
from bananaflow.catalog.source import CatalogFile
from bananaflow.errors import CatalogError

#: (line or position, the parsed value, why it could not be parsed or "")
_Record = tuple[int, Any, str]


def parse_json(file: CatalogFile) -> Parsed:
    """Columns (every key any object has, in first-seen order) and rows of a JSON catalog."""
    name = file.name
    records = _records(file.take_text(), name)
    if not records:
        raise CatalogError(f"{name} is empty; expected one JSON object per line with 'sku' and 'title'")
    if all(problem for _, _, problem in records):
        raise CatalogError(f"{name} is not JSON Lines: no line parses as a JSON object")
    columns: dict[str, None] = {}
    for _, obj, _ in records:
        if isinstance(obj, dict):
            columns.update((str(k).strip(), None) for k in obj)

    def rows() -> Rows:
        for number, obj, problem in records:
            if problem:
                yield RawRow(number, {}, problem)
            elif not isinstance(obj, dict):
                yield RawRow(number, {}, f"line holds a JSON {type(obj).__name__}, not an object")
            else:
                values = {str(k).strip(): text_value(v).strip() for k, v in obj.items()}
                yield RawRow(number, {c: values.get(c, "") for c in columns})

    return list(columns), rows()


def _records(text: str, name: str) -> list[_Record]:
    """The array's items numbered from 1, or each non-blank line by its line number."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = read_limits.json_loads(stripped, name, "the array")
        except json.JSONDecodeError as exc:
            raise CatalogError(f"{name} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
        return [(i + 1, item, "") for i, item in enumerate(items)]
    records: list[_Record] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((number, read_limits.json_loads(line, name, f"line {number}"), ""))
        except json.JSONDecodeError as exc:
            records.append((number, None, f"line is not valid JSON ({exc.msg} at column {exc.colno})"))
    return records

