"""Excel workbooks (the first sheet), every cell read as text; the zip's declared sizes are
checked by ``read_limits.check_zip`` before anything is decompressed."""
from __future__ import annotations

import io

from bananaflow.catalog import read_limits
from bananaflow.catalog.formats.values import table_rows
from bananaflow.catalog.rows import Parsed
from bananaflow.catalog.source import CatalogFile
from bananaflow.errors import CatalogError


def parse_excel(file: CatalogFile) -> Parsed:
    """Columns and rows of a workbook's first sheet; an unreadable one is one line."""
    read_limits.check_zip(file.data, file.name)
    try:
        import pandas as pd  # here: only an Excel catalog pays for the import

        frame = pd.read_excel(io.BytesIO(file.data), dtype=str, keep_default_na=False, sheet_name=0)
    except Exception as exc:
        raise CatalogError(
            f"{file.name} is not a readable Excel workbook ({type(exc).__name__}); save it again as .xlsx"
        ) from None
    return table_rows(frame.to_dict("records"), [str(c) for c in frame.columns])
