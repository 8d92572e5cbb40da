"""Spreadsheet-safe CSV/TSV: every file bananaflow writes goes through here.

A shop opens ``manifest.csv``, ``rejected.csv`` and the write-back feeds in Excel or Google
Sheets, and their cells come from a catalog (untrusted): a SKU or title starting with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return would be run as a formula
(``=HYPERLINK(...)``, ``=WEBSERVICE(...)``, DDE). Such a cell is written with a leading
apostrophe (OWASP's advice), which spreadsheets show as text and do not display; a value that
itself starts with an apostrophe gets one more, so ``unneutralise`` gives back exactly what
was written (the manifest CSV is read back for ``--previous-manifest``).

A marketplace importing the file (Shopify, Merchant Center) reads the apostrophe as part of
the value: an ``id`` that starts with one of those characters should be renamed in the shop.
"""
from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

#: First characters that make a spreadsheet read a cell as a formula (or a DDE command).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
_QUOTE = "'"


def neutralise(value: Any) -> Any:
    """``value`` safe to open in a spreadsheet; non-strings (numbers, None) unchanged."""
    if isinstance(value, str) and value and (value[0] in FORMULA_STARTS or value[0] == _QUOTE):
        return _QUOTE + value
    return value


def unneutralise(value: Any) -> Any:
    """The value ``neutralise`` was given."""
    if isinstance(value, str) and value.startswith(_QUOTE):
        return value[1:]
    return value


def _has_cr(cells: Iterable[Any]) -> bool:
    return any(isinstance(cell, str) and "\r" in cell for cell in cells)


class SafeWriter:
    """``csv.writer`` whose every cell passes through ``neutralise``. A row with a carriage
    return inside a value is written fully quoted: ``csv`` quotes only the characters of its
    own line terminator, and a bare CR starts a new row in a spreadsheet (whose first cell
    could then be a formula)."""

    def __init__(self, out: Any, **kwargs: Any) -> None:
        self._writer = csv.writer(out, **kwargs)
        self._quoted = csv.writer(out, **{**kwargs, "quoting": csv.QUOTE_ALL})

    def writerow(self, row: Iterable[Any]) -> Any:
        cells = [neutralise(cell) for cell in row]
        return (self._quoted if _has_cr(cells) else self._writer).writerow(cells)

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out: Any, **kwargs: Any) -> SafeWriter:
    """Drop-in for ``csv.writer`` (same arguments)."""
    return SafeWriter(out, **kwargs)


def frame_to_csv(frame: Any, **kwargs: Any) -> str:
    """``DataFrame.to_csv`` with text cells neutralised (and every cell quoted when a value
    holds a carriage return, as in ``SafeWriter``)."""
    safe = neutralise_frame(frame)
    text_columns = [c for c in safe.columns if safe[c].dtype == object or str(safe[c].dtype) == "string"]
    has_cr = any(safe[c].astype("string").str.contains("\r", regex=False).fillna(False).any() for c in text_columns)
    if has_cr:
        kwargs["quoting"] = csv.QUOTE_ALL
    text: str = safe.to_csv(**kwargs)  # no path given: pandas returns the text
    return text


def neutralise_frame(frame: Any) -> Any:
    """A copy of a DataFrame with its text columns neutralised (numbers and dates kept)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or str(out[column].dtype) == "string":
            out[column] = out[column].map(neutralise, na_action="ignore")
    return out


def unneutralise_frame(frame: Any) -> Any:
    """``neutralise_frame`` undone, for a CSV read back with every column as text."""
    out = frame.copy()
    for column in out.columns:
        out[column] = out[column].map(unneutralise, na_action="ignore")
    return out
