"""Merchant Center XML feeds: RSS 2.0 (``<item>``) and Atom (``<entry>``) with the ``g:``
namespace, the most common feed format, read into the same columns as a TSV feed.

Each item's child elements become columns by their local name (``g:image_link`` and
``image_link`` alike; the ``g:`` one wins when both are there, as Merchant Center reads it).
Repeated ``additional_image_link`` elements are joined with commas; nested groups such as
``g:shipping`` become the text of their parts. Rows are numbered by the line the item
starts on, so a rejection points at the feed's line.

Feeds are untrusted input: a document with a DOCTYPE or entity declarations is refused
before parsing (no external entities, no entity expansion bombs); feeds never need them.
"""
from __future__ import annotations

import re
from xml.parsers import expat

from bananaflow.catalog.rows import Parsed, RawRow, Rows
from bananaflow.catalog.source import CatalogFile
from bananaflow.errors import CatalogError

GOOGLE_NS = "http://base.google.com/ns/1.0"
ATOM_NS = "http://www.w3.org/2005/Atom"
#: Atom's own elements under the Merchant Center attribute they stand for.
_ATOM_NAMES = {"summary": "description", "content": "description"}
_ITEMS = ("item", "entry")
_REPEATED = ("additional_image_link", "lifestyle_image_link")
_DECLARATION = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


class _Collector:
    """Expat callbacks that gather one dict per item (with its starting line)."""

    def __init__(self, parser: expat.XMLParserType) -> None:
        self.parser = parser
        self.items: list[tuple[int, dict[str, str]]] = []
        self.columns: dict[str, None] = {}
        self._item: dict[str, str] | None = None
        self._google: set[str] = set()
        self._depth = 0  # depth inside the current item
        self._field = ""
        self._google_field = False
        self._text: list[str] = []

    def start(self, name: str, attrs: dict[str, str]) -> None:
        ns, _, local = name.rpartition(" ")
        if self._item is None:
            if local in _ITEMS:
                self._item, self._google, self._depth = {}, set(), 0
                self.items.append((self.parser.CurrentLineNumber, self._item))
            return
        self._depth += 1
        if self._depth == 1:
            local = _ATOM_NAMES.get(local, local) if ns == ATOM_NS else local
            self._field, self._google_field, self._text = local, ns == GOOGLE_NS, []
            if local == "link" and attrs.get("href") and attrs.get("rel", "alternate") == "alternate":
                self._text.append(attrs["href"])
            elif local == "category" and attrs.get("term"):  # Atom: <category term="watches"/>
                self._text.append(attrs["term"])
        elif self._text and self._text[-1].strip():
            self._text.append(":")

    def data(self, text: str) -> None:
        if self._item is not None and self._depth >= 1:
            self._text.append(text)

    def end(self, name: str) -> None:
        if self._item is None:
            return
        if self._depth == 0:
            self._item = None
            return
        if self._depth == 1:
            self._store(self._item, self._field, " ".join("".join(self._text).split()).strip(":"))
        self._depth -= 1

    def _store(self, item: dict[str, str], field: str, value: str) -> None:
        self.columns.setdefault(field, None)
        if field in _REPEATED and item.get(field) and value:
            item[field] += "," + value
        elif self._google_field or field not in self._google:
            if value or field not in item:
                item[field] = value
            if self._google_field:
                self._google.add(field)


def parse_xml_feed(file: CatalogFile) -> Parsed:
    """Columns and rows of an RSS 2.0 or Atom product feed."""
    data, name = file.data, file.name
    if _DECLARATION.search(data[:65536]):
        raise CatalogError(f"{name} declares a DOCTYPE or entities, which product feeds never need; refused")
    parser = expat.ParserCreate(namespace_separator=" ")
    collector = _Collector(parser)
    parser.StartElementHandler = collector.start
    parser.EndElementHandler = collector.end
    parser.CharacterDataHandler = collector.data
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise CatalogError(
            f"{name} is not well-formed XML (line {exc.lineno}, column {exc.offset + 1}: "
            f"{expat.errors.messages[exc.code]}); fix the feed or export it again"
        ) from None
    if not collector.items:
        raise CatalogError(f"{name} has no <item> or <entry> elements; expected an RSS 2.0 or Atom product feed")
    columns = list(collector.columns)

    def rows() -> Rows:
        for line, item in collector.items:
            yield RawRow(line, {c: item.get(c, "") for c in columns})

    return columns, rows()
