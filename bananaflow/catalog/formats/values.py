"""What the parsers share: a parsed value as catalog text, a header checked for twice-named
columns, and the rows of a table (Parquet, Excel) numbered as a spreadsheet shows them."""
from __future__ import annotations

import json
import math
import sys
from typing import Any

from bananaflow.catalog.rows import Parsed, RawRow, Rows
from bananaflow.errors import CatalogError


def text_value(value: Any) -> str:
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
    pd = sys.modules.get("pandas")  # pandas' missing values come only from a parser that imported it:
    if pd is not None and (value is pd.NA or value is pd.NaT):  # a CSV read never pays for the import
        return ""
    return str(value)


def unique_header(names: list[str], name: str) -> list[str]:
    """Column names stripped (and of a BOM); a name used twice is an error, since one of the
    two columns would be lost."""
    header = [h.strip().lstrip("\ufeff") for h in names]
    seen: set[str] = set()
    for column in header:
        if column and column in seen:
            raise CatalogError(f"{name} has the column '{column}' twice; rename one of them")
        seen.add(column)
    return header


def table_rows(records: list[dict[str, Any]], columns: list[str]) -> Parsed:
    """Parquet and Excel: numbered as a spreadsheet shows them, header = row 1; rows with
    no value at all are left out."""
    header = unique_header(columns, "catalog")

    def rows() -> Rows:
        for index, record in enumerate(records):
            values = {h: text_value(record.get(orig)).strip() for h, orig in zip(header, columns) if h}
            if any(values.values()):
                yield RawRow(index + 2, values)

    return [h for h in header if h], rows()
