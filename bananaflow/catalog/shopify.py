"""The Shopify product CSV, in both column sets Shopify writes.

The legacy export (``Handle``, ``Body (HTML)``, ``Variant SKU``, ``Image Src``, ``Option1
Name``...) and the 2024 template (``URL handle``, ``Description``, ``SKU``, ``Product image
URL``, ``Variant image URL``, ``Option1 name``...) carry the same product. Rows sharing a
handle add variants (option values, SKUs, prices) and images; each handle is folded into one
product whose ``sku`` is the handle, because the handle is what a Shopify import matches new
image rows on when the results are written back.

Products a shop does not want images for are marked ``skip`` (drafts, archived or unpublished
products, gift cards, app pseudo-products such as "Shipping Protection by Route"); the loader
counts them instead of generating them unless told to include them.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypedDict

from bananaflow.catalog.column_names import describe_columns
from bananaflow.catalog.rows import Parsed, RawRow, Rows
from bananaflow.errors import CatalogError

#: Each field under its legacy name, then the 2024 template's name for it.
_ALIASES: dict[str, tuple[str, ...]] = {
    "Handle": ("Handle", "URL handle"),
    "Body (HTML)": ("Body (HTML)", "Description"),
    "Product Category": ("Product Category", "Product category"),
    "Published": ("Published", "Published on online store"),
    "Variant SKU": ("Variant SKU", "SKU"),
    "Variant Price": ("Variant Price", "Price"),
    "Image Src": ("Image Src", "Product image URL"),
    "Image Position": ("Image Position", "Image position"),
    "Image Alt Text": ("Image Alt Text", "Image alt text"),
    "Variant Image": ("Variant Image", "Variant image URL"),
    "Gift Card": ("Gift Card", "Gift card"),
    **{f"Option{i} {part.title()}": (f"Option{i} {part.title()}", f"Option{i} {part}") for i in (1, 2, 3)
       for part in ("name", "value")},
}
HANDLE_COLUMNS = _ALIASES["Handle"]
SHOPIFY_FIELDS = [
    "sku", "handle", "title", "description", "brand", "product_type", "category", "tags",
    "image_link", "additional_image_link", "image_alt", "variant_skus", "variant_count",
    "options", "option1_name", "option1_values", "option2_name", "option2_values",
    "option3_name", "option3_values", "price", "color", "size", "status", "color_variants",
]
_COLOR_NAMES = {"color", "colour", "colors", "colours", "farbe", "farben", "couleur", "couleurs", "kleur", "colore",
                "color family", "colour family", "shade", "shades"}
_SIZE_NAMES = {"size", "sizes", "größe", "grösse", "groesse", "taille", "tailles", "talla", "tallas", "maat", "taglia"}
#: Apps that add a product to the catalog to sell a service at checkout.
_PSEUDO_VENDORS = {"route", "extend", "navidium", "seel", "corso", "redo", "shipping protection"}
_PSEUDO_TITLE = re.compile(r"\b(shipping|package|order) (protection|insurance)\b|\bgift ?card\b", re.IGNORECASE)


#: Tags apps and staff use to manage a catalog, not words about the product:
#: ``import_2021_02_11_033502``, ``review-pricing``, ``sync-123456``, ``_hidden``.
_INTERNAL_TAG = re.compile(
    r"^(_|import|export|imported|migrat\w*|review|sync|todo|temp|test|hidden|draft|needs)[-_ ]"
    r"|\d{4}[-_]\d{2}[-_]\d{2}|\d{6,}|^[a-z]+_[a-z0-9_]+$",
    re.IGNORECASE,
)


def product_tags(value: str) -> str:
    """Shopify's ``Tags`` without internal ones, for prompts (``Tags`` itself stays as is)."""
    tags = [t.strip() for t in value.split(",")]
    return ", ".join(t for t in tags if t and not _INTERNAL_TAG.search(t))


def get(row: Mapping[str, str], name: str) -> str:
    """``row``'s value for the legacy column ``name``, under either column set."""
    for column in _ALIASES.get(name, (name,)):
        value = row.get(column, "")
        if value:
            return value
    return ""


def option_kind(name: str) -> str:
    """``color``, ``size`` or "" for an option name as shops write it ("Colors", "Size ")."""
    key = " ".join(name.lower().split())
    if key in _COLOR_NAMES or key.startswith(("color", "colour")):
        return "color"
    if key in _SIZE_NAMES or key.startswith("size"):
        return "size"
    return ""


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def _skip_reason(main: Mapping[str, str]) -> str:
    status = main.get("Status", "").strip().lower()
    if status in ("draft", "archived", "unlisted"):
        return f"{status} product"
    if get(main, "Published").strip().lower() in ("false", "no", "0"):
        return "unpublished product"
    if get(main, "Gift Card").strip().lower() == "true":
        return "gift card"
    vendor = main.get("Vendor", "").strip().lower()
    if vendor in _PSEUDO_VENDORS or main.get("Type", "").strip().lower() in ("insurance", "protection"):
        return "app pseudo-product (shipping protection)"
    if _PSEUDO_TITLE.search(main.get("Title", "")):
        return "app pseudo-product (gift card or shipping protection)"
    return ""


@dataclass
class _Product:
    row_number: int
    rows: list[dict[str, str]] = field(default_factory=list)


def _images(rows: list[dict[str, str]]) -> tuple[list[str], str]:
    images: list[tuple[int, int, str, str]] = []
    for order, row in enumerate(rows):
        for column in ("Image Src", "Variant Image"):
            src = get(row, column)
            if src:
                position = get(row, "Image Position") if column == "Image Src" else ""
                rank = int(position) if position.isdigit() else 10_000 + order
                images.append((rank, order, src, get(row, "Image Alt Text") if column == "Image Src" else ""))
    images.sort()
    return _unique([src for _, _, src, _ in images]), next((alt for _, _, _, alt in images if alt), "")


class _ColorGroup(TypedDict):
    """One colour's entry in ``color_variants``, written as JSON in this key order."""

    color: str
    skus: list[str]
    image: str


def _color_variants(variants: list[dict[str, str]], index: int) -> str:
    """JSON list of {color, skus, image} for each distinct value of colour option ``index``:
    what per-colour variant images are planned and written back from."""
    groups: dict[str, _ColorGroup] = {}
    for row in variants:
        color = get(row, f"Option{index} Value").strip()
        if not color:
            continue
        group = groups.setdefault(color, {"color": color, "skus": [], "image": ""})
        sku = get(row, "Variant SKU")
        if sku:
            group["skus"].append(sku)
        if not group["image"]:
            group["image"] = get(row, "Variant Image")
    return json.dumps(list(groups.values()), ensure_ascii=False) if len(groups) > 0 else ""


def _fold(handle: str, product: _Product) -> RawRow:
    """One handle's rows as one product: the first row with a Title carries the product's
    fields; every row may add a variant (option values, SKU, price) and an image."""
    main = next((r for r in product.rows if r.get("Title")), product.rows[0])
    links, alt = _images(product.rows)
    variants = [r for r in product.rows
                if any(get(r, f"Option{i} Value") for i in (1, 2, 3)) or get(r, "Variant SKU")]
    values = dict(main)
    values.update(
        sku=handle, handle=handle, title=main.get("Title", ""), description=get(main, "Body (HTML)"),
        brand=main.get("Vendor", ""), product_type=main.get("Type", ""),
        category=get(main, "Product Category") or main.get("Type", ""), tags=product_tags(main.get("Tags", "")),
        image_link=links[0] if links else "", additional_image_link=",".join(links[1:11]), image_alt=alt,
        variant_skus=", ".join(_unique([get(r, "Variant SKU") for r in variants])),
        variant_count=str(len(variants)),
        price=get(variants[0], "Variant Price") if variants else get(main, "Variant Price"),
        status=main.get("Status", "").strip().lower(), color="", size="", color_variants="",
    )
    described = []
    for i in (1, 2, 3):
        option = get(main, f"Option{i} Name").strip()
        option_values = _unique([get(r, f"Option{i} Value").strip() for r in variants])
        values[f"option{i}_name"] = option
        values[f"option{i}_values"] = ", ".join(option_values)
        if option and option_values and option_values != ["Default Title"]:
            described.append(f"{option}: {', '.join(option_values)}")
            kind = option_kind(option)
            if kind and not values[kind]:
                values[kind] = ", ".join(option_values)
                if kind == "color":
                    values["color_variants"] = _color_variants(variants, i)
    values["options"] = "; ".join(described)
    return RawRow(product.row_number, values, skip=_skip_reason(main))


def transform(columns: list[str], rows: Rows, name: str) -> Parsed:
    handle_column = next((c for c in HANDLE_COLUMNS if c in columns), None)
    if handle_column is None:
        raise CatalogError(
            f"{name} is not a Shopify product CSV: it has no 'Handle' (or 'URL handle') column; "
            f"found {describe_columns(columns)}"
        )
    out_columns = SHOPIFY_FIELDS + [c for c in columns if c not in SHOPIFY_FIELDS]

    def folded() -> Rows:
        # Shopify writes a handle's rows together, but hand-edited sheets get sorted; group
        # by handle in order of first appearance, so nothing depends on row order.
        products: dict[str, _Product] = {}
        for raw in rows:
            handle = raw.values.get(handle_column, "")
            if raw.problem:
                yield RawRow(raw.row_number, {"sku": handle}, raw.problem)
                continue
            if not handle:
                yield RawRow(raw.row_number, {"sku": ""}, f"row has no {handle_column}; every Shopify row needs one")
                continue
            products.setdefault(handle, _Product(raw.row_number)).rows.append(raw.values)
        for handle, product in products.items():
            yield _fold(handle, product)

    return out_columns, folded()


def translate_mapping(mapping: Mapping[str, str], columns: list[str]) -> dict[str, str]:
    """``--map sku="Variant SKU"`` on an export with the 2024 columns maps ``SKU``: a mapped
    legacy column name that the file lacks is taken under its 2024 name."""
    out: dict[str, str] = {}
    for source, target in mapping.items():
        if source not in columns:
            source = next((alias for alias in _ALIASES.get(source, ()) if alias in columns), source)
        out[source] = target
    return out


def looks_shopify(columns: list[str]) -> bool:
    return any(c in columns for c in HANDLE_COLUMNS) and "Title" in columns
