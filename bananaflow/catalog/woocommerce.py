"""The WooCommerce product CSV export (English or localised headers, e.g. a French admin's
``UGS``/``Nom``/``Publié``).

One product per row that is not a variation; a variation row (it has a ``Parent``) adds its
attribute values and image to its parent. ``sku`` is the product's SKU, else ``id-<ID>``.
Products not published (``Published`` 0 = draft, -1 = private) are marked ``skip``.
"""
from __future__ import annotations

from collections.abc import Mapping

from bananaflow.catalog.rows import Parsed, RawRow, Rows
from bananaflow.catalog.shopify import option_kind
from bananaflow.errors import CatalogError

#: Our name for a column, then its header in the exports seen (English, French, German).
_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("ID",),
    "type": ("Type",),
    "sku_column": ("SKU", "UGS", "Artikelnummer"),
    "name": ("Name", "Nom"),
    "published": ("Published", "Publié", "Veröffentlicht"),
    "short": ("Short description", "Description courte", "Kurzbeschreibung"),
    "description": ("Description", "Beschreibung"),
    "categories": ("Categories", "Catégories", "Kategorien"),
    "tags": ("Tags", "Étiquettes", "Schlagwörter"),
    "images": ("Images", "Bilder"),
    "parent": ("Parent", "Übergeordnetes Produkt"),
    "price": ("Regular price", "Tarif régulier", "Regulärer Preis"),
}
FIELDS = ["sku", "title", "description", "product_type", "category", "tags", "image_link", "additional_image_link",
          "options", "color", "size", "price", "variant_count"]


def _find(columns: list[str], key: str) -> str | None:
    names = {c.strip().lower(): c for c in columns}
    return next((names[n.lower()] for n in _COLUMNS[key] if n.lower() in names), None)


def _attribute_columns(columns: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for i in range(1, 10):
        name = next((c for c in columns if c.strip() in (f"Attribute {i} name", f"Nom de l’attribut {i}",
                                                          f"Nom de l'attribut {i}", f"Eigenschaft {i} Name")), None)
        value = next((c for c in columns if c.strip() in (f"Attribute {i} value(s)", f"Valeur(s) de l’attribut {i}",
                                                           f"Valeur(s) de l'attribut {i}", f"Eigenschaft {i} Wert(e)")), None)
        if name and value:
            pairs.append((name, value))
    return pairs


def looks_woocommerce(columns: list[str]) -> bool:
    return all(_find(columns, key) for key in ("id", "sku_column", "name", "published", "images"))


def _split(value: str) -> list[str]:
    return [p.strip() for p in value.replace("\n", ",").split(",") if p.strip()]


def transform(columns: list[str], rows: Rows, name: str) -> Parsed:
    col = {key: _find(columns, key) for key in _COLUMNS}
    if not col["name"] or not col["id"]:
        raise CatalogError(f"{name} is not a WooCommerce export: it has no 'ID' and 'Name' columns")
    attributes = _attribute_columns(columns)
    out_columns = FIELDS + [c for c in columns if c not in FIELDS]

    def value(row: Mapping[str, str], key: str) -> str:
        return row.get(col[key] or "", "").strip()

    def folded() -> Rows:
        products: dict[str, tuple[RawRow, dict[str, list[str]], list[str]]] = {}
        variations: list[dict[str, str]] = []
        for raw in rows:
            if raw.problem:
                yield raw
                continue
            if value(raw.values, "parent") not in ("", "0"):
                variations.append(raw.values)
                continue
            sku = value(raw.values, "sku_column") or (f"id-{value(raw.values, 'id')}" if value(raw.values, "id") else "")
            options = {raw.values.get(n, "").strip(): _split(raw.values.get(v, "")) for n, v in attributes
                       if raw.values.get(n, "").strip()}
            products[sku or f"row-{raw.row_number}"] = (raw, options, _split(value(raw.values, "images")))
        keys = {value(p[0].values, "sku_column") or "": k for k, p in products.items()}
        keys.update({f"id:{value(p[0].values, 'id')}": k for k, p in products.items()})
        for variation in variations:
            parent = keys.get(value(variation, "parent"))
            if parent:
                products[parent][2].extend(_split(value(variation, "images")))
        for sku, (raw, options, images) in products.items():
            yield _product(sku, raw, options, images, value)

    return out_columns, folded()


def _product(sku: str, raw: RawRow, options: dict[str, list[str]], images: list[str], value) -> RawRow:  # noqa: ANN001
    links = list(dict.fromkeys(images))
    values = dict(raw.values)
    values.update(
        sku=sku if not sku.startswith("row-") else "", title=value(raw.values, "name"),
        description=value(raw.values, "description") or value(raw.values, "short"),
        product_type=value(raw.values, "categories").split(",")[0].strip(), category=value(raw.values, "categories"),
        tags=value(raw.values, "tags"), image_link=links[0] if links else "",
        additional_image_link=",".join(links[1:11]), price=value(raw.values, "price"),
        options="; ".join(f"{k}: {', '.join(v)}" for k, v in options.items() if v), color="", size="",
        variant_count=str(max([len(v) for v in options.values()] or [1])),
    )
    for option, option_values in options.items():
        kind = option_kind(option)
        if kind and not values[kind]:
            values[kind] = ", ".join(option_values)
    published = value(raw.values, "published")
    skip = {"0": "draft product", "-1": "private product"}.get(published, "")
    return RawRow(raw.row_number, values, skip=skip)
