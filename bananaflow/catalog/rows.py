"""A catalog record between parsing and validation, shared by the parsers, the column steps
and the feed presets."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class RawRow:
    """A parsed record before validation; ``problem`` marks rows the parser could not use,
    ``skip`` rows a shop would not want images for (a draft, a shipping-protection
    pseudo-product), which are counted, not generated, unless unpublished rows are included."""

    row_number: int
    values: dict[str, str]
    problem: str = ""
    skip: str = ""


#: Records as a parser or a column step hands them on: read lazily, one at a time.
Rows = Iterator[RawRow]
#: What a parser or a column step hands on: the columns it found and its rows.
Parsed = tuple[list[str], Rows]
