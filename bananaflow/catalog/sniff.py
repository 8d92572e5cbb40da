"""Which format a catalog is in, told from its bytes first and its name second: a Parquet
file named ``.csv`` is still Parquet, a feed saved as ``.txt`` is still XML."""
from __future__ import annotations

from pathlib import PurePosixPath
from typing import Literal

#: Every format a catalog can be sniffed as; ``catalog.formats.PARSERS`` has a parser for each.
Kind = Literal["csv", "tsv", "json", "xml", "parquet", "excel"]

_PARQUET_MAGIC = b"PAR1"
_EXCEL_MAGIC = b"PK\x03\x04"  # an XLSX is a zip
_BLANKS = b"\xef\xbb\xbf \t\r\n"  # a UTF-8 BOM and whitespace before the first character


def sniff_kind(name: str, data: bytes) -> Kind:
    """File format from content first, then from the extension, then from the first
    character (``{`` or ``[`` is JSON); anything else is read as CSV."""
    if data[:4] == _PARQUET_MAGIC:
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
    head = data[:4096].lstrip(_BLANKS)
    if head[:1] in (b"{", b"["):
        return "json"
    return "csv"


def looks_like_xml(data: bytes) -> bool:
    """An RSS or Atom feed by its first tag, whatever the file is called."""
    head = data[:512].lstrip(_BLANKS)
    return head.startswith((b"<?xml", b"<rss", b"<feed", b"<channel"))
