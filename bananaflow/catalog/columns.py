"""Putting a parsed catalog's columns onto ours: a feed preset (Shopify, Merchant Center,
WooCommerce) folds its rows onto our fields, ``--map`` renames columns, ``--sku-from`` makes
SKUs for a list that has none, and the columns a run needs are checked to be there (one line
naming what was found, otherwise). Rows pass through lazily; nothing here holds them."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from bananaflow.catalog import feeds, shopify
from bananaflow.catalog.column_names import describe_columns
from bananaflow.catalog.rows import Parsed, RawRow, Rows
from bananaflow.errors import CatalogError


@dataclass(frozen=True)
class MappedColumns:
    """A catalog with our column names: its columns, its rows (read lazily), the preset that
    mapped it ("" for none) and the field limits that preset sets."""

    columns: list[str]
    rows: Rows
    preset: str = ""
    field_limits: Mapping[str, int] = field(default_factory=dict)


def map_columns(
    parsed: Parsed,
    name: str,
    *,
    required: tuple[str, ...],
    preset: str | None = None,
    rename: Mapping[str, str] | None = None,
    sku_from: str | None = None,
) -> MappedColumns:
    """The preset (asked for, or recognised when there is no ``sku`` column), then the
    renames, then ``sku_from``; a ``required`` column still missing is a ``CatalogError``."""
    columns, rows = parsed
    feed = feeds.choose_preset(preset, columns, dict(rename or {}), name)
    if feed is not None:
        columns, rows = feed.transform(columns, rows, name)
    if rename:
        mapping = shopify.translate_mapping(rename, columns) if feed is feeds.PRESETS["shopify"] else dict(rename)
        columns, rows = _renamed(columns, rows, mapping, name)
    if sku_from:
        columns, rows = _sku_from(columns, rows, sku_from, name)
    _check_required(name, columns, required)
    if feed is None:
        return MappedColumns(columns, rows)
    return MappedColumns(columns, rows, feed.name, dict(feed.field_limits))


def _renamed(columns: list[str], rows: Rows, mapping: dict[str, str], name: str) -> Parsed:
    """``mapping`` is {file column: our column}. A mapped column replaces a column that
    already has the target name (``sku`` = "Variant SKU" wins over a preset's ``sku``)."""
    missing = [source for source in mapping if source not in columns]
    if missing:
        raise CatalogError(f"{name} has no column '{missing[0]}' to map; found {describe_columns(columns)}")
    replaced = {target for source, target in mapping.items() if target != source} - set(mapping)
    new_columns = [mapping.get(c, c) for c in columns if c not in replaced]
    if len(set(new_columns)) != len(new_columns):
        raise CatalogError(f"renaming the columns of {name} would give two columns the same name")

    def renamed() -> Rows:
        for raw in rows:
            values = {k: v for k, v in raw.values.items() if k not in replaced}
            yield RawRow(raw.row_number, {mapping.get(k, k): v for k, v in values.items()}, raw.problem, raw.skip)

    return new_columns, renamed()


def sku_slug(value: str) -> str:
    """A stable SKU made from a title or a link: ``https://x/p/blue-mug?v=2`` → ``blue-mug``."""
    text = value.strip()
    if "://" in text or text.startswith("//"):
        path = text.split("://", 1)[-1].lstrip("/").split("?", 1)[0].split("#", 1)[0]
        parts = [p for p in path.split("/")[1:] if p]
        text = parts[-1] if parts else path
    slug = re.sub(r"[^\w]+", "-", text.lower(), flags=re.UNICODE).strip("-_")
    return slug[:64].rstrip("-_")


def _sku_from(columns: list[str], rows: Rows, column: str, name: str) -> Parsed:
    """``--sku-from COLUMN``: the SKU made from a column, for lists that have none."""
    if column not in columns:
        raise CatalogError(f"--sku-from {column}: {name} has no such column; found {describe_columns(columns)}")

    def with_skus() -> Rows:
        for raw in rows:
            values = dict(raw.values)
            if not values.get("sku"):
                values["sku"] = sku_slug(values.get(column, ""))
            yield RawRow(raw.row_number, values, raw.problem, raw.skip)

    return (columns if "sku" in columns else ["sku", *columns]), with_skus()


def _check_required(name: str, columns: list[str], required: tuple[str, ...]) -> None:
    """Every ``required`` column is there, or one line naming the columns found and a hint:
    a column that differs only in case, or a first line that is data, not a header."""
    missing = [c for c in required if c not in columns]
    if not missing:
        return
    found = describe_columns(columns)
    lowered = {c.lower(): c for c in columns}
    hints = [f"'{lowered[m.lower()]}' differs only in case" for m in missing if m.lower() in lowered]
    what = " or ".join(f"'{m}'" for m in missing)
    noun = "column" if len(missing) == 1 else "columns"
    message = f"{name} has no {what} {noun}; found {found} — rename a column or map it"
    if hints:
        message += f" ({'; '.join(hints)})"
    elif _looks_like_data(columns):
        message = (f"{name} seems to have no header line (its first line is data, not column names); "
                   "add a header line such as 'sku,title,price' as the first line")
    raise CatalogError(message)


def _looks_like_data(columns: list[str]) -> bool:
    """A first line of values, not names: numbers, prices, or very long cells."""
    data_like = [c for c in columns if re.fullmatch(r"[-+]?[\d.,]+", c) or len(c) > 60]
    return bool(columns) and len(data_like) * 2 >= len(columns)
