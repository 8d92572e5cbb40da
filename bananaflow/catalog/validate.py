"""The checks every catalog row goes through, and the rejections they give.

A bad *row* (no SKU, duplicate SKU, an empty required field, a field too long, a broken photo
link, a line the parser could not read) becomes a ``Rejection`` with the line number the
merchant sees in their editor, and the rest of the catalog still runs: one typo must not
block 10,000 products. Rows are checked as they are read, so nothing here holds a catalog.
"""
from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from bananaflow.catalog.rows import RawRow, Rows
from bananaflow.catalog.text import DESCRIPTION_COLUMNS, text_length
from bananaflow.landing import csv_safe

#: Columns holding photo locations, checked per row so a broken link is a rejection with its
#: row number rather than a failed fetch hours later.
LINK_COLUMNS = ("image_link", "additional_image_link")
_SCHEMES = ("http", "https", "s3", "gs")
#: A description is truncated in the prompt, not rejected, unless it is absurdly long (hostile).
_DESCRIPTION_CAP = 20


@dataclass(frozen=True)
class CatalogRow:
    """One accepted product. ``fields`` holds every column by name (values stripped, missing
    values as ""), so templates can use any column the merchant has."""

    row_number: int
    sku: str
    fields: dict[str, str] = field(hash=False)


@dataclass(frozen=True)
class Rejection:
    """A row that will not be generated, and why, in words a merchant can act on."""

    row_number: int
    sku: str
    reason: str


@dataclass
class RowChecks:
    """The checks for one catalog and the rows they turned away: ``rejected`` and ``skipped``
    fill up as ``accepted`` is read (complete once it is exhausted)."""

    required: tuple[str, ...]
    max_field_chars: int
    #: Per-column limits that replace ``max_field_chars`` (a preset's, e.g. Merchant Center's).
    field_limits: Mapping[str, int] = field(default_factory=dict)
    #: Rows marked ``skip`` (drafts, app pseudo-products) are checked like any other when True.
    include_unpublished: bool = False
    rejected: list[Rejection] = field(default_factory=list)
    #: Rows left out on purpose, with why; counted, not rejected.
    skipped: list[Rejection] = field(default_factory=list)

    def accepted(self, rows: Rows) -> Iterator[CatalogRow]:
        """The rows that pass, as they are read; a SKU seen before is a duplicate."""
        first_seen: dict[str, int] = {}
        for raw in rows:
            sku = raw.values.get("sku", "")
            if raw.skip and not self.include_unpublished:
                self.skipped.append(Rejection(raw.row_number, sku, raw.skip))
                continue
            reasons = [raw.problem] if raw.problem else self._problems(raw, sku, first_seen)
            if reasons:
                self.rejected.append(Rejection(raw.row_number, sku, "; ".join(reasons)))
                continue
            first_seen[sku] = raw.row_number
            yield CatalogRow(raw.row_number, sku, dict(raw.values))

    def _problems(self, raw: RawRow, sku: str, first_seen: Mapping[str, int]) -> list[str]:
        reasons: list[str] = []
        if not sku:
            reasons.append("missing sku")
        elif sku in first_seen:
            reasons.append(f"duplicate sku '{sku}' (first on row {first_seen[sku]})")
        for column in self.required:
            if column != "sku" and not raw.values.get(column, ""):
                reasons.append(f"empty {column}")
        for column, value in raw.values.items():
            reason = _length_problem(column, value, self.field_limits.get(column, self.max_field_chars))
            if reason:
                reasons.append(reason)
        return reasons + _link_problems(raw.values)


def _length_problem(column: str, value: str, limit: int) -> str:
    """Limits count the text a person reads (HTML stripped); a long description is cut in
    the prompt at a sentence or word boundary instead of rejecting the product."""
    if len(value) <= limit:
        return ""
    if column in DESCRIPTION_COLUMNS:
        cap = limit * _DESCRIPTION_CAP
        return "" if len(value) <= cap else f"{column} is {len(value)} characters; the limit is {cap}"
    length = text_length(value)
    return f"{column} is {length} characters; the limit is {limit}" if length > limit else ""


def _link_problems(values: dict[str, str]) -> list[str]:
    """Why photo links cannot be fetched; protocol-relative ones (``//cdn/x.jpg``, web links)
    are made ``https:`` in ``values``."""
    reasons: list[str] = []
    for column in LINK_COLUMNS:
        if column not in values:
            continue
        if values[column].lstrip().startswith("//"):
            values[column] = ",".join("https:" + link if link.startswith("//") else link
                                      for link in split_links(values[column]))
        for link in split_links(values[column]):
            problem = link_problem(link)
            if problem:
                reasons.append(f"bad {column} {link[:80]!r}: {problem}")
    return reasons


def split_links(value: str) -> list[str]:
    """``additional_image_link`` holds up to 10 links separated by commas."""
    return [part.strip() for part in value.split(",") if part.strip()]


def link_problem(link: str) -> str | None:
    """Why ``link`` cannot be a product photo location, or None. Accepted: http(s) URLs,
    ``s3://bucket/key``, ``gs://bucket/key`` and local paths (relative to the catalog's folder)."""
    if any(c.isspace() for c in link):
        return "contains whitespace; percent-encode spaces as %20"
    scheme, sep, rest = link.partition("://")
    if not sep:
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:(?![\\/])", link) and not re.match(r"^[a-zA-Z]:[\\/]", link):
            return "is not an http(s) URL, s3:// or gs://bucket/key or a file path"
        return None
    if scheme.lower() not in _SCHEMES:
        return f"scheme '{scheme}' is not supported; use http(s)://, s3://, gs:// or a file path"
    host, _, path = rest.partition("/")
    if not host:
        return "has no host"
    if scheme.lower() in ("s3", "gs") and not path:
        return f"is not {scheme.lower()}://bucket/key"
    return None


def rejections_to_csv(rejected: list[Rejection]) -> bytes:
    """The rejection report (row_number, sku, reason) as UTF-8 CSV for the merchant."""
    buffer = io.StringIO(newline="")
    writer = csv_safe.writer(buffer, lineterminator="\n")  # spreadsheet-safe cells
    writer.writerow(["row_number", "sku", "reason"])
    for item in rejected:
        writer.writerow([item.row_number, item.sku, item.reason])
    return buffer.getvalue().encode("utf-8")
