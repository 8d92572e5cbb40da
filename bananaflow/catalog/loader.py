"""Loading a merchant's catalog into validated rows, every value a string.

Catalogs come from spreadsheets and feed exports: CSV with or without a BOM, TSV (Google
Merchant), JSON Lines, XML feeds, Parquet, Excel. Everything is read as text so a SKU
``00123`` stays ``00123`` and a price ``9.90`` is not turned into ``9.9``.

Reading is a chain of steps, each its own module: the bytes within bounds (``source``,
``read_limits``), the format told from them (``sniff``), that format's parser
(``formats.PARSERS``), the columns put onto ours (``columns``), and the rows checked
(``validate``). A file that cannot be read at all (missing, empty, binary, no ``sku``
column) raises ``CatalogError`` saying what was expected; a bad *row* becomes a
``Rejection`` and the rest of the catalog still runs.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from bananaflow.catalog.columns import map_columns
from bananaflow.catalog.formats import parser_for
from bananaflow.catalog.read_limits import bounded_rows
from bananaflow.catalog.sniff import sniff_kind
from bananaflow.catalog.source import read_catalog
from bananaflow.catalog.validate import CatalogRow, Rejection, RowChecks

if TYPE_CHECKING:
    import pandas as pd


@dataclass(kw_only=True)
class CatalogRead:
    """What reading one catalog found besides its accepted rows."""

    rejected: list[Rejection]
    columns: list[str]
    source: str
    preset: str = ""
    #: Rows left out on purpose (drafts, archived, app pseudo-products), with why; counted, not rejected.
    skipped: list[Rejection] = field(default_factory=list)


@dataclass(kw_only=True)
class CatalogLoad(CatalogRead):
    """The outcome of reading one catalog whole."""

    accepted: list[CatalogRow]

    def to_frame(self) -> pd.DataFrame:
        """Accepted rows as a string-typed DataFrame (``row_number`` first)."""
        import pandas as pd  # here, not at import: streaming a CSV needs none of it

        records = [{"row_number": r.row_number, **r.fields} for r in self.accepted]
        frame = pd.DataFrame.from_records(records, columns=["row_number", *self.columns])
        return frame.astype({c: "string" for c in self.columns})


@dataclass(kw_only=True)
class CatalogStream(CatalogRead):
    """A catalog being read: iterating it yields accepted products one at a time, counted in
    ``accepted``, while ``rejected``/``skipped`` fill up (complete once it is exhausted), so a
    100,000-row catalog is planned without holding every row."""

    rows: Iterator[CatalogRow]
    accepted: int = 0

    def __iter__(self) -> Iterator[CatalogRow]:
        for row in self.rows:
            self.accepted += 1
            yield row


def load_catalog(source: str, **reading: Any) -> CatalogLoad:
    """Read and validate a whole catalog (see ``open_catalog`` for the options)."""
    stream = open_catalog(source, **reading)
    return CatalogLoad(accepted=list(stream), **{f.name: getattr(stream, f.name) for f in fields(CatalogRead)})


def open_catalog(
    source: str,
    *,
    encoding: str | None = None,
    required: tuple[str, ...] = ("sku", "title"),
    max_field_chars: int = 5000,
    rename: Mapping[str, str] | None = None,
    preset: str | None = None,
    include_unpublished: bool = False,
    sku_from: str | None = None,
) -> CatalogStream:
    """Open and check a catalog from a local path or ``s3://bucket/key``; its rows are
    parsed and validated as they are read.

    ``rename`` maps the file's column names to ours (``{"id": "sku", "Title": "title"}``),
    for feeds whose columns we should not ask the merchant to edit. ``preset`` (``shopify``,
    ``merchant``) maps a known export onto our fields; without one, a file with no ``sku``
    column is recognised as a Shopify or Merchant Center export by its columns.
    ``"none"`` turns recognition off. Drafts, archived and unpublished products and app
    pseudo-products (shipping protection, gift cards) are counted in ``skipped`` and not
    generated unless ``include_unpublished``. ``sku_from`` names a column whose value, made
    into a slug, is the SKU of a list that has none (scraped lists, supplier sheets).
    """
    source = str(source)
    file = read_catalog(source, encoding)
    columns, rows = parser_for(sniff_kind(file.name, file.data))(file)
    mapped = map_columns((columns, bounded_rows(rows, file.name)), file.name, required=required,
                         preset=preset, rename=rename, sku_from=sku_from)
    checks = RowChecks(required, max_field_chars, mapped.field_limits, include_unpublished)
    return CatalogStream(rows=checks.accepted(mapped.rows), rejected=checks.rejected, skipped=checks.skipped,
                         columns=mapped.columns, source=source, preset=mapped.preset)
