"""Parquet catalogs, read with pyarrow (not pandas: an integer column with nulls must not
come back as ``123.0``), their expansion bounded by ``read_limits.read_parquet``."""
from __future__ import annotations

from bananaflow.catalog import read_limits
from bananaflow.catalog.formats.values import table_rows
from bananaflow.catalog.rows import Parsed
from bananaflow.catalog.source import CatalogFile
from bananaflow.errors import CatalogError


def parse_parquet(file: CatalogFile) -> Parsed:
    """Columns and rows of a Parquet file; a corrupt one is one line, whatever pyarrow raised."""
    try:
        table = read_limits.read_parquet(file.data, file.name)
    except CatalogError:
        raise
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise CatalogError(f"{file.name} is not a readable Parquet file ({type(exc).__name__}); export it again") from None
    return table_rows(table.to_pylist(), [str(c) for c in table.column_names])
