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

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from bananaflow.catalog.rows import RawRow
from bananaflow.errors import CatalogError

Rows = Iterator[RawRow]
Transform = Callable[[list[str], Rows, str], tuple[list[str], Rows]]


@dataclass(frozen=True)
class FeedPreset:
    """A named mapping from one export format to catalog fields."""

    name: str
    description: str
    transform: Transform
    detect: Callable[[list[str]], bool]
    field_limits: Mapping[str, int] = field(default_factory=dict)

    def apply(self, columns: list[str], rows: Rows, name: str) -> tuple[list[str], Rows]:
        return self.transform(columns, rows, name)


# -- Google Merchant Center ------------------------------------------------------------------
def _merchant_name(column: str) -> str:
    """``g:image_link`` (XML feeds flattened to TSV) and ``Image Link`` read as ``image_link``."""
    name = column.strip()
    if name.lower().startswith("g:"):
        name = name[2:]
    return name.lower().replace(" ", "_")


def _merchant(columns: list[str], rows: Rows, name: str) -> tuple[list[str], Rows]:
    renamed = [_merchant_name(c) for c in columns]
    if "id" not in renamed:
        raise CatalogError(f"{name} is not a Merchant Center feed: it has no 'id' column; found: {', '.join(columns)}")
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
            values.setdefault("category", values.get("product_type") or values.get("google_product_category", ""))
            yield RawRow(raw.row_number, values, raw.problem)

    return out_columns, folded()


def _looks_merchant(columns: list[str]) -> bool:
    names = {_merchant_name(c) for c in columns}
    return {"id", "title"} <= names and bool(names & {"image_link", "link", "availability", "price"})


# -- Shopify product CSV -----------------------------------------------------------------------
_HANDLE = ("Handle", "URL handle")
_SKU = ("Variant SKU", "SKU")
_PRICE = ("Variant Price", "Price")
_SHOPIFY_FIELDS = [
    "sku", "handle", "title", "description", "brand", "product_type", "category", "tags",
    "image_link", "additional_image_link", "image_alt", "variant_skus", "variant_count",
    "options", "option1_name", "option1_values", "option2_name", "option2_values",
    "option3_name", "option3_values", "price", "color", "size",
]


def _first(values: Mapping[str, str], names: tuple[str, ...]) -> str:
    for name in names:
        if values.get(name):
            return values[name]
    return ""


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


@dataclass
class _Product:
    row_number: int
    first: dict[str, str]
    rows: list[dict[str, str]] = field(default_factory=list)
    problems: list[RawRow] = field(default_factory=list)


def _fold(handle: str, product: _Product) -> RawRow:
    """One handle's rows as one product: the first row with a Title carries the product's
    fields; every row may add a variant (option values, SKU, price) and an image."""
    main = next((r for r in product.rows if r.get("Title")), product.rows[0])
    images: list[tuple[int, int, str, str]] = []
    for order, row in enumerate(product.rows):
        for column in ("Image Src", "Variant Image"):
            src = row.get(column, "")
            if src:
                position = row.get("Image Position", "") if column == "Image Src" else ""
                rank = int(position) if position.isdigit() else 10_000 + order
                images.append((rank, order, src, row.get("Image Alt Text", "") if column == "Image Src" else ""))
    images.sort()
    links = _unique([src for _, _, src, _ in images])
    variants = [r for r in product.rows if any(r.get(f"Option{i} Value") for i in (1, 2, 3)) or _first(r, _SKU)]
    values = dict(main)
    values.update(
        sku=handle,
        handle=handle,
        title=main.get("Title", ""),
        description=main.get("Body (HTML)", "") or main.get("Description", ""),
        brand=main.get("Vendor", ""),
        product_type=main.get("Type", ""),
        category=main.get("Product Category", "") or main.get("Type", ""),
        tags=main.get("Tags", ""),
        image_link=links[0] if links else "",
        additional_image_link=",".join(links[1:11]),
        image_alt=next((alt for _, _, _, alt in images if alt), ""),
        variant_skus=", ".join(_unique([_first(r, _SKU) for r in variants])),
        variant_count=str(len(variants)),
        price=_first(variants[0], _PRICE) if variants else _first(main, _PRICE),
    )
    described = []
    for i in (1, 2, 3):
        option = main.get(f"Option{i} Name", "")
        option_values = _unique([r.get(f"Option{i} Value", "") for r in variants])
        values[f"option{i}_name"] = option
        values[f"option{i}_values"] = ", ".join(option_values)
        if option and option_values and option_values != ["Default Title"]:
            described.append(f"{option}: {', '.join(option_values)}")
            if option.lower() in ("color", "colour"):
                values["color"] = ", ".join(option_values)
            elif option.lower() == "size":
                values["size"] = ", ".join(option_values)
    values.setdefault("color", "")
    values.setdefault("size", "")
    values["options"] = "; ".join(described)
    return RawRow(product.row_number, values)


def _shopify(columns: list[str], rows: Rows, name: str) -> tuple[list[str], Rows]:
    handle_column = next((c for c in _HANDLE if c in columns), None)
    if handle_column is None:
        raise CatalogError(
            f"{name} is not a Shopify product CSV: it has no 'Handle' (or 'URL handle') column; "
            f"found: {', '.join(columns)}"
        )
    out_columns = _SHOPIFY_FIELDS + [c for c in columns if c not in _SHOPIFY_FIELDS]

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
            product = products.setdefault(handle, _Product(raw.row_number, raw.values))
            product.rows.append(raw.values)
        for handle, product in products.items():
            yield _fold(handle, product)

    return out_columns, folded()


def _looks_shopify(columns: list[str]) -> bool:
    return any(c in columns for c in _HANDLE) and "Title" in columns


PRESETS: dict[str, FeedPreset] = {
    "shopify": FeedPreset(
        "shopify", "Shopify product CSV export (rows grouped by Handle)", _shopify, _looks_shopify
    ),
    "merchant": FeedPreset(
        "merchant",
        "Google Merchant Center product feed (TSV/CSV/XLSX)",
        _merchant,
        _looks_merchant,
        field_limits={"id": 50, "title": 150, "description": 5000},
    ),
}
PRESET_ALIASES = {"google-merchant": "merchant", "gmc": "merchant", "google": "merchant"}


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
    if "sku" in columns or "sku" in rename.values():
        return None
    for candidate in PRESETS.values():
        if candidate.detect(columns):
            return candidate
    return None
