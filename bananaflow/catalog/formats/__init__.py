"""One parser per catalog format, keyed by the kind ``catalog.sniff`` tells. A parser takes
the file as read and hands on its columns and its rows (read lazily, not yet validated).
Adding a format is one module here and one line in ``PARSERS`` (and its kind in ``Kind``)."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Final

from bananaflow.catalog.formats.delimited import CSV_DELIMITERS, TSV_DELIMITERS, parse_delimited
from bananaflow.catalog.formats.excel import parse_excel
from bananaflow.catalog.formats.json_lines import parse_json
from bananaflow.catalog.formats.parquet import parse_parquet
from bananaflow.catalog.formats.xml_feed import parse_xml_feed
from bananaflow.catalog.rows import Parsed
from bananaflow.catalog.sniff import Kind
from bananaflow.catalog.source import CatalogFile
from bananaflow.errors import CatalogError

__all__ = ["PARSERS", "Parser", "parser_for"]

#: A parser: the file as read in, its columns and rows out; a file it cannot read at all is a
#: ``CatalogError``, a record it cannot use a ``RawRow`` with a ``problem``.
Parser = Callable[[CatalogFile], Parsed]

PARSERS: Final[dict[Kind, Parser]] = {
    "csv": partial(parse_delimited, delimiters=CSV_DELIMITERS),
    "tsv": partial(parse_delimited, delimiters=TSV_DELIMITERS),
    "json": parse_json,
    "xml": parse_xml_feed,
    "parquet": parse_parquet,
    "excel": parse_excel,
}


def parser_for(kind: Kind) -> Parser:
    """The parser for ``kind``; a kind without one (added to ``Kind`` but not here) is
    refused in one line, not a KeyError."""
    if kind not in PARSERS:
        raise CatalogError(f"no parser for a {kind!r} catalog; bananaflow reads {', '.join(PARSERS)}")
    return PARSERS[kind]
