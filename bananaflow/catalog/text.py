"""Text of catalog values as a prompt needs it: HTML stripped, entities decoded.

Shops write descriptions in HTML (Shopify's ``Body (HTML)``, WooCommerce, feeds with CDATA),
often with size-chart tables and entities (``2&quot; × 2&quot;``). What counts, for limits
and for prompts, is the text a person would read.
"""
from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

_BLOCK_TAGS = {"p", "br", "li", "div", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol"}
_TAG = re.compile(r"<[A-Za-z/!][^>]*>")
#: Columns holding a long description: limited after stripping, truncated in prompts, never a rejection.
DESCRIPTION_COLUMNS = frozenset({"description", "Body (HTML)", "Description", "long_description"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def strip_html(value: Any) -> str:
    """Text of an HTML description: tags, scripts and styles removed, entities decoded
    (twice-encoded ones too, as exports often have), whitespace collapsed."""
    parser = _TextExtractor()
    parser.feed(str(value or ""))
    parser.close()
    return " ".join(html.unescape("".join(parser.parts)).split())


def has_markup(value: str) -> bool:
    return "&" in value or bool(_TAG.search(value))


def text_length(value: str) -> int:
    """Characters a person reads in ``value``: HTML stripped when it has any."""
    return len(strip_html(value)) if has_markup(value) else len(value)
