"""Presets that map the exports shops really have onto bananaflow's catalog fields.

Internal fields are Google Merchant Center's attribute names (``sku`` for the id):
``title``, ``description``, ``brand``, ``product_type``, ``image_link``,
``additional_image_link``, ``item_group_id``, ``color``, ``size``, ``material``, ``price``.
Templates written against those names work for every source; the file's own columns stay
available too (``fields['Body (HTML)']``).

A Shopify product CSV is not one row per product: rows sharing a ``Handle`` add variants
(option values, SKUs, prices) and images. The preset folds each handle into one product
whose ``sku`` is the handle, because the handle is what a Shopify import matches new image
rows on when the results are written back.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bananaflow.catalog import amazon, shopify, woocommerce
from bananaflow.catalog.column_names import describe_columns
from bananaflow.catalog.rows import Parsed, RawRow, Rows
from bananaflow.errors import CatalogError

#: A preset's mapping: (columns, rows, file name) in, our columns and rows out, rows lazily.
Transform = Callable[[list[str], Rows, str], Parsed]


@dataclass(frozen=True)
class FeedPreset:
    """A named mapping from one export format to catalog fields."""

    name: str
    description: str
    transform: Transform
    detect: Callable[[list[str]], bool]
    field_limits: Mapping[str, int] = field(default_factory=dict)


# -- Google Merchant Center ------------------------------------------------------------------
def _merchant_name(column: str) -> str:
    """``g:image_link`` (XML feeds flattened to TSV) and ``Image Link`` read as ``image_link``."""
    name = column.strip()
    if name.lower().startswith("g:"):
        name = name[2:]
    return name.lower().replace(" ", "_")


def _merchant(columns: list[str], rows: Rows, name: str) -> Parsed:
    renamed = [_merchant_name(c) for c in columns]
    if "id" not in renamed:
        raise CatalogError(f"{name} is not a Merchant Center feed: it has no 'id' column; "
                           f"found {describe_columns(columns)}")
    if len(set(renamed)) != len(renamed):
        raise CatalogError(f"{name} has the same Merchant Center attribute twice (with and without 'g:')")
    mapping = dict(zip(columns, renamed))
    out_columns = ["sku", *renamed]
    if "category" not in renamed:
        out_columns.append("category")

    def folded() -> Rows:
        for raw in rows:
            values = {mapping.get(k, k): v for k, v in raw.values.items()}
            values = {"sku": values.get("id", ""), **values}
            if not values.get("category"):
                values["category"] = values.get("product_type") or values.get("google_product_category", "")
            yield RawRow(raw.row_number, values, raw.problem, raw.skip)

    return out_columns, folded()


def _looks_merchant(columns: list[str]) -> bool:
    names = {_merchant_name(c) for c in columns}
    return {"id", "title"} <= names and bool(names & {"image_link", "link", "availability", "price"})


PRESETS: dict[str, FeedPreset] = {
    "shopify": FeedPreset(
        "shopify", "Shopify product CSV export (rows grouped by Handle)", shopify.transform, shopify.looks_shopify
    ),
    "merchant": FeedPreset(
        "merchant",
        "Google Merchant Center product feed (TSV/CSV/XLSX)",
        _merchant,
        _looks_merchant,
        field_limits={"id": 50, "title": 150, "description": 5000},
    ),
}
PRESETS["woocommerce"] = FeedPreset(
    "woocommerce", "WooCommerce product CSV export (variations folded into their parent)",
    woocommerce.transform, woocommerce.looks_woocommerce,
)
PRESETS["amazon"] = FeedPreset(
    "amazon", "Amazon Seller Central flat file (inventory template or listing report; lines above the header)",
    amazon.transform, amazon.looks_amazon,
)
PRESET_ALIASES = {"google-merchant": "merchant", "gmc": "merchant", "google": "merchant", "woo": "woocommerce",
                  "amazon-flat-file": "amazon"}


def choose_preset(preset: str | None, columns: list[str], rename: Mapping[str, str], name: str) -> FeedPreset | None:
    """The preset to apply: the one asked for, else one recognised from the columns of a
    file that has no ``sku`` column and no mapping that gives it one."""
    if preset:
        key = PRESET_ALIASES.get(preset.lower(), preset.lower())
        if key in ("none", "generic"):
            return None
        if key not in PRESETS:
            raise CatalogError(f"unknown catalog preset {preset!r}; known: {', '.join(PRESETS)}, none")
        return PRESETS[key]
    if "sku" in columns and not amazon.looks_amazon(columns):  # an Amazon flat file has a sku column too
        return None
    # a mapping (``--map sku="Variant SKU"``) does not hide what the export is: it is applied
    # after the preset, and only a generic sheet mapped to ``title`` too skips recognition
    if {"sku", "title"} <= set(rename.values()):
        return None
    for candidate in PRESETS.values():
        if candidate.detect(columns):
            return candidate
    return None
