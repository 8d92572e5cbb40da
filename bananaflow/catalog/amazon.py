"""Amazon Seller Central flat files (inventory templates and listing reports) as catalogs.

A flat file opens with lines above its header: ``TemplateType=...`` (and in newer templates a
row of localised labels) before the row of attribute names (``item_sku``, ``item_name``...);
``formats.delimited`` finds that header row. Attribute names come in two spellings, the old
``product-name``/``main-image-url`` and the newer ``item_name``/``main_image_url``; both map to
our fields. A variation family's ``parent`` row is not a product (its children are): it is
counted as skipped, and its children carry the family in ``item_group_id``.
"""
from __future__ import annotations

import re

from bananaflow.catalog.rows import Parsed, RawRow, Rows

__all__ = ["FIELDS", "looks_amazon", "transform"]

#: Our field, then the attribute names Amazon's templates and reports use for it (normalised:
#: lowercase, ``-`` and spaces as ``_``).
_NAMES: dict[str, tuple[str, ...]] = {
    "sku": ("item_sku", "sku", "seller_sku"),
    "title": ("item_name", "product_name"),
    "description": ("product_description",),
    "brand": ("brand_name", "brand"),
    "image_link": ("main_image_url", "main_image_location"),
    "color": ("color_name", "color"),
    "size": ("size_name", "size"),
    "material": ("material_type", "material_fabric1", "fabric_type"),
    "product_type": ("feed_product_type", "product_type", "clothing_type"),
    "price": ("standard_price", "item_price", "price"),
    "item_group_id": ("parent_sku",),
    "gtin": ("external_product_id", "product_id"),
}
_OTHER_IMAGES = re.compile(r"^other_image_(url|location)\d+$")
FIELDS = [*_NAMES, "additional_image_link"]


def _normal(column: str) -> str:
    return re.sub(r"[\s-]+", "_", column.strip().lower())


def looks_amazon(columns: list[str]) -> bool:
    """A seller SKU and an Amazon product name column (``item_name`` or ``product-name``)."""
    names = {_normal(c) for c in columns}
    return bool(names & {"item_sku", "sku", "seller_sku"}) and bool(names & {"item_name", "product_name"})


def transform(columns: list[str], rows: Rows, name: str) -> Parsed:
    """Our fields from a flat file's columns (the file's own columns stay, under their names)."""
    normal = {_normal(c): c for c in reversed(columns)}  # the first of two spellings wins
    source = {field: next((normal[n] for n in names if n in normal), None) for field, names in _NAMES.items()}
    others = [c for c in columns if _OTHER_IMAGES.match(_normal(c))]
    parent_child = normal.get("parent_child")
    out_columns = FIELDS + [c for c in columns if c not in FIELDS]

    def mapped() -> Rows:
        for raw in rows:
            values = dict(raw.values)
            for field, column in source.items():
                if column is not None:
                    values[field] = raw.values.get(column, "")
                else:
                    values.setdefault(field, "")
            values["additional_image_link"] = ",".join(v for c in others if (v := raw.values.get(c, "").strip()))
            skip = ""
            if parent_child and raw.values.get(parent_child, "").strip().lower() == "parent":
                skip = "an Amazon variation parent (its child rows are the products)"
            yield RawRow(raw.row_number, {c: values.get(c, "") for c in out_columns}, raw.problem, skip or raw.skip)

    return out_columns, mapped()
