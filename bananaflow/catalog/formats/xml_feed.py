"""Merchant Center XML feeds: RSS 2.0 (``<item>``) and Atom (``<entry>``) with the ``g:``
namespace, the most common feed format, read into the same columns as a TSV feed.

Each item's child elements become columns by their local name (``g:image_link`` and
``image_link`` alike; the ``g:`` one wins when both are there, as Merchant Center reads it).
Repeated ``additional_image_link`` elements are joined with commas; nested groups such as
``g:shipping`` become the text of their parts. Rows are numbered by the line the item
starts on, so a rejection points at the feed's line.

Feeds are untrusted input. A DOCTYPE or any entity declaration is refused by the parser
itself (expat's own handlers fire whatever padding comes before it and in any encoding,
UTF-16 included), so nothing is ever expanded; the text of one field is capped
(``MAX_FIELD_CHARS``: that item is rejected, the feed read on); and the feed is parsed in
chunks, twice (once for the columns, once for the rows), never held as a list of items.

Real shop feeds often carry a bare ``&`` in a title (``Black & Decker``) or an HTML entity
(``Cerv&eacute;lo``): these are read as the character they mean, with a warning naming the
line, instead of refusing the whole feed.
"""
from __future__ import annotations

import html.entities
import logging
import re
from collections.abc import Callable, Iterator
from xml.parsers import expat

from bananaflow.catalog import read_limits
from bananaflow.catalog.rows import Parsed, RawRow, Rows
from bananaflow.catalog.source import CatalogFile
from bananaflow.errors import CatalogError

GOOGLE_NS = "http://base.google.com/ns/1.0"
ATOM_NS = "http://www.w3.org/2005/Atom"
#: Characters of text one field may hold; a description is read up to 100,000 (5,000 x 20).
MAX_FIELD_CHARS = 1_000_000
#: Bytes handed to expat at a time.
CHUNK_BYTES = 1 << 20
#: Warnings about repaired ampersands, per feed, before they are only counted.
MAX_WARNINGS = 5
#: Atom's own elements under the Merchant Center attribute they stand for.
_ATOM_NAMES = {"summary": "description", "content": "description"}
_ITEMS = ("item", "entry")
_REPEATED = ("additional_image_link", "lifestyle_image_link")
_SPACES = re.compile(r"\s+")
_XML_ENTITIES = frozenset({b"amp", b"lt", b"gt", b"quot", b"apos"})
#: A CDATA section or comment (kept as it is), or an ``&`` and what follows it.
_AMPERSANDS = re.compile(rb"<!\[CDATA\[.*?\]\]>|<!--.*?-->|&(#[0-9]+;|#x[0-9a-fA-F]+;|([A-Za-z][A-Za-z0-9]*);)?",
                         re.DOTALL)

log = logging.getLogger("bananaflow.catalog.xml_feed")

Item = tuple[int, dict[str, str], str]


class _Declared(Exception):  # noqa: N818 - internal signal, turned into CatalogError
    """The feed declares a DOCTYPE or entities."""


def _refuse(*_: object) -> None:
    raise _Declared


def _refuse_external(*_: object) -> int:
    raise _Declared


class _Collector:
    """Expat callbacks that hand on one dict per item (with its starting line and, when a
    field was too long, why the item cannot be used)."""

    def __init__(self, parser: expat.XMLParserType, done: list[Item]) -> None:
        self.parser = parser
        self.done = done
        self.columns: dict[str, None] = {}
        self._item: dict[str, str] | None = None
        self._line = 0
        self._problem = ""
        self._google: set[str] = set()
        self._depth = 0  # depth inside the current item
        self._field = ""
        self._google_field = False
        self._text: list[str] = []
        self._size = 0

    def start(self, name: str, attrs: dict[str, str]) -> None:
        ns, _, local = name.rpartition(" ")
        if self._item is None:
            if local in _ITEMS:
                self._item, self._google, self._depth, self._problem = {}, set(), 0, ""
                self._line = self.parser.CurrentLineNumber
            return
        self._depth += 1
        if self._depth == 1:
            local = _ATOM_NAMES.get(local, local) if ns == ATOM_NS else local
            self._field, self._google_field, self._text, self._size = local, ns == GOOGLE_NS, [], 0
            if local == "link" and attrs.get("href") and attrs.get("rel", "alternate") == "alternate":
                self._add(attrs["href"])
            elif local == "category" and attrs.get("term"):  # Atom: <category term="watches"/>
                self._add(attrs["term"])
        elif self._text and self._text[-1].strip():
            self._add(":")

    def data(self, text: str) -> None:
        if self._item is not None and self._depth >= 1:
            self._add(text)

    def _add(self, text: str) -> None:
        self._size += len(text)
        if self._size > MAX_FIELD_CHARS:
            if not self._problem:
                self._problem = f"{self._field} is longer than {MAX_FIELD_CHARS} characters"
            return
        self._text.append(text)

    def end(self, name: str) -> None:
        if self._item is None:
            return
        if self._depth == 0:
            self.done.append((self._line, self._item, self._problem))
            self._item = None
            return
        if self._depth == 1:
            value = _SPACES.sub(" ", "".join(self._text)).strip().strip(":")
            self._text = []
            self._store(self._item, self._field, value)
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
    name = file.name
    data = repair_ampersands(file.data, name)
    file.data = b""
    columns: dict[str, None] = {}
    count = 0
    limit = read_limits.max_rows()
    for _ in _items(data, name, columns):
        count += 1
        if count > limit:
            read_limits.check_row_count(count, name)
    if not count:
        raise CatalogError(f"{name} has no <item> or <entry> elements; expected an RSS 2.0 or Atom product feed")
    names = list(columns)

    def rows() -> Rows:
        for line, item, problem in _items(data, name, {}):
            yield RawRow(line, {c: item.get(c, "") for c in names}, problem)

    return names, rows()


def _items(data: bytes, name: str, columns: dict[str, None]) -> Iterator[Item]:
    """The feed's items as expat reaches them, parsed ``CHUNK_BYTES`` at a time."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    refuse: Callable[..., None] = _refuse
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.NotationDeclHandler = refuse
    parser.ExternalEntityRefHandler = _refuse_external
    done: list[Item] = []
    collector = _Collector(parser, done)
    parser.StartElementHandler = collector.start
    parser.EndElementHandler = collector.end
    parser.CharacterDataHandler = collector.data
    parser.buffer_text = True
    try:
        for offset in range(0, len(data), CHUNK_BYTES):
            parser.Parse(data[offset:offset + CHUNK_BYTES], False)
            columns.update(collector.columns)
            yield from done
            done.clear()
        parser.Parse(b"", True)
    except _Declared:
        raise CatalogError(
            f"{name} declares a DOCTYPE or entities (line {parser.CurrentLineNumber}), which product feeds "
            "never need; refused"
        ) from None
    except expat.ExpatError as exc:
        raise CatalogError(
            f"{name} is not well-formed XML (line {exc.lineno}, column {exc.offset + 1}: "
            f"{expat.errors.messages[exc.code]}); fix the feed or export it again"
        ) from None
    columns.update(collector.columns)
    yield from done


def repair_ampersands(data: bytes, name: str) -> bytes:
    """``data`` with each bare ``&`` escaped and each HTML entity (``&eacute;``) made a
    character reference, outside CDATA and comments; one warning per repaired line (the
    first ``MAX_WARNINGS``). Feeds in UTF-16/32 are left as they are (expat reads them)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]:
        return data
    lines: list[int] = []
    counted = (0, 1)  # (offset, line at offset): lines are counted once, forward

    def fix(match: re.Match[bytes]) -> bytes:
        nonlocal counted
        whole, named = match.group(0), match.group(2)
        if not whole.startswith(b"&") or (match.group(1) and (named is None or named in _XML_ENTITIES)):
            return whole
        replacement = b"&amp;" + whole[1:]
        if named is not None:
            code = html.entities.name2codepoint.get(named.decode("ascii"))
            if code is None:
                return whole  # an unknown entity: expat names it as not well-formed
            replacement = f"&#{code};".encode("ascii")
        offset, line = counted
        line += data.count(b"\n", offset, match.start())
        counted = (match.start(), line)
        if not lines or lines[-1] != line:
            lines.append(line)
        return replacement

    if b"&" not in data:
        return data
    repaired = _AMPERSANDS.sub(fix, data)
    for line in lines[:MAX_WARNINGS]:
        log.warning("%s line %d: a bare '&' or an HTML entity was read as its character; "
                    "escape '&' as '&amp;' in the feed", name, line)
    if len(lines) > MAX_WARNINGS:
        log.warning("%s: %d more lines had a bare '&' or an HTML entity", name, len(lines) - MAX_WARNINGS)
    return repaired
