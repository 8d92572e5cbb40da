"""A catalog record between parsing and validation, shared by the loader and the feed presets."""
from __future__ import annotations

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
