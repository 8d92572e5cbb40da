"""Catalog values shown in Prefect's UI, as text and never as Markdown or HTML.

Prefect renders Markdown artifacts, table-artifact cells and pause-form descriptions as
Markdown (with inline HTML). A SKU or a title is untrusted: ``# heading``, ``[link](...)``,
``![img](https://outside/)``, ``<img src=...>`` or a ``\\r`` must show as the characters they
are, not become a heading, a phishing link, an image the reviewer's browser fetches, or a new
table row. Every catalog value goes through ``text`` (prose) or ``cell`` (a table cell).
"""
from __future__ import annotations

import re

__all__ = ["cell", "text"]

#: Characters with a meaning in CommonMark/GFM inline syntax, escaped with a backslash
#: wherever they are: ``.`` and ``:`` stop GFM's bare autolinks (``www.x.y``, ``http://x``,
#: ``a@b.c``), ``#`` a heading, ``|`` a table cell, ``!`` ``[`` ``]`` images and links.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#!|~:.])")
#: Characters that only open a block (a list item, a setext underline, a thematic break) when
#: a line starts with them: escaped at the start of a value, left as they are inside it (an
#: ``OBS-007`` stays ``OBS-007``).
_LEADING = re.compile(r"^(\s*)([-+=])")
#: Line breaks of every kind (CR, LF, NEL, LS, PS, VT, FF) become one space: a value is one line.
_BREAKS = re.compile(r"[\r\n\x0b\x0c\x85\u2028\u2029]+")
#: Other control characters and bidi overrides are dropped.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def text(value: object, *, limit: int = 200) -> str:
    """``value`` as literal Markdown text on one line, at most ``limit`` characters of it."""
    raw = _CONTROL.sub("", _BREAKS.sub(" ", str(value)))
    if len(raw) > limit:
        raw = raw[: max(limit - 1, 0)] + "…"
    html_safe = raw.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _LEADING.sub(r"\1\\\2", _MARKDOWN.sub(r"\\\1", html_safe))


def cell(value: object, *, limit: int = 200) -> str:
    """``value`` for a Markdown or table-artifact cell: ``text``, whose escapes cover ``|``
    and every line break (a ``\\r`` cannot start a row of its own)."""
    return text(value, limit=limit)
