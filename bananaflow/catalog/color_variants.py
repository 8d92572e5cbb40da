"""The ``color_variants`` cell (one JSON list of ``{color, skus, image}``, made by the
Shopify preset or written by hand) read strictly, and each colour made a safe key part.

A cell that is not such a list is a problem of its product alone (``validate`` rejects the
row with one line); a colour in any script (``Grün``, ``Rouge foncé``, ``黒``) becomes an
ASCII key part that is stable across runs and never shared by two different colours.
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass

__all__ = ["ColorGroup", "color_key_part", "color_variants_problem", "parse_color_variants"]

#: Longest readable part of a colour's key part (a hash may follow).
MAX_COLOR_PART = 40


@dataclass(frozen=True)
class ColorGroup:
    """One distinct colour of a product, its variants' SKUs and its own photo (or "")."""

    color: str
    skus: tuple[str, ...]
    image: str = ""


def parse_color_variants(cell: str) -> list[ColorGroup]:
    """The groups of a ``color_variants`` cell (``[]`` for an empty one); raises
    ``ValueError`` with a reason a merchant can act on for anything else."""
    if not cell.strip():
        return []
    try:
        data = json.loads(cell)
    except (ValueError, RecursionError):
        raise ValueError("color_variants is not valid JSON; expected a list of {color, skus, image}") from None
    if not isinstance(data, list):
        raise ValueError(f"color_variants holds a JSON {type(data).__name__}; expected a list of {{color, skus, image}}")
    groups: list[ColorGroup] = []
    for n, entry in enumerate(data, start=1):
        if not isinstance(entry, dict):
            raise ValueError(f"color_variants entry {n} is a JSON {type(entry).__name__}, not an object")
        color, skus, image = entry.get("color"), entry.get("skus", []), entry.get("image", "")
        if not isinstance(color, str | int | float) or isinstance(color, bool) or not str(color).strip():
            raise ValueError(f"color_variants entry {n} has no color text")
        if not isinstance(skus, list) or not all(isinstance(s, str | int) and not isinstance(s, bool) for s in skus):
            raise ValueError(f"color_variants entry {n}: skus must be a list of SKUs")
        if not isinstance(image, str):
            raise ValueError(f"color_variants entry {n}: image must be a link")
        groups.append(ColorGroup(str(color).strip(), tuple(str(s) for s in skus), image.strip()))
    return groups


def color_variants_problem(cell: str) -> str:
    """Why the cell cannot be read ("" when it can)."""
    try:
        parse_color_variants(cell)
    except ValueError as exc:
        return str(exc)
    return ""


def color_key_part(color: str) -> str:
    """A lowercase ASCII key part for ``color``: ``Black`` → ``black``, ``Navy Blue`` →
    ``navy-blue``; a colour that had to be transliterated, cut or was left empty gets 8 hex
    of its own text's hash, so ``Grün`` (``grun-…``) and ``Grun`` (``grun``) stay apart."""
    base = unicodedata.normalize("NFKC", color).strip().lower()
    folded = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9_]+", "-", folded).strip("-_")
    if slug and base.isascii() and len(slug) <= MAX_COLOR_PART:
        return slug  # what these colours were always called: existing keys stay
    digest = hashlib.sha256(base.encode("utf-8")).hexdigest()[:8]
    return f"{(slug[:MAX_COLOR_PART - 9].rstrip('-_') or 'color')}-{digest}"
