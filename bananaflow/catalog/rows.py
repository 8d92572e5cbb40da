"""A catalog record between parsing and validation, shared by the loader and the feed presets."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RawRow:
    """A parsed record before validation; ``problem`` marks rows the parser could not use."""

    row_number: int
    values: dict[str, str]
    problem: str = ""
