"""What a refusal may say about a file's columns before the file is accepted as a catalog.

The first line of a file that is not a catalog is not a header, it is content: a
``catalog.updated`` event naming ``~/.pgpass`` made ``has no 'sku' column; found: <the
password line>`` land in the flow run's state message. So a message names only the columns
whose names bananaflow knows (the fields of its presets and common feed attributes) and
counts the rest, never quoting them: the file, the count, and the column we looked for.
"""
from __future__ import annotations

from typing import Final

__all__ = ["KNOWN_COLUMNS", "describe_columns"]

#: Column names (lowercase, spaces as ``_``, without ``g:``) a message may repeat.
KNOWN_COLUMNS: Final[frozenset[str]] = frozenset({
    # ours and Merchant Center's
    "sku", "id", "title", "name", "description", "link", "image_link", "additional_image_link",
    "lifestyle_image_link", "price", "sale_price", "availability", "condition", "brand", "gtin", "mpn",
    "color", "colour", "size", "material", "pattern", "gender", "age_group", "item_group_id", "product_type",
    "google_product_category", "category", "categories", "tags", "shipping", "shipping_weight", "mobile_link",
    "identifier_exists", "custom_label_0", "custom_label_1", "custom_label_2", "custom_label_3", "custom_label_4",
    "status", "options", "handle", "vendor", "type", "published", "variant_sku", "variant_price", "image_src",
    "image_position", "image_alt_text", "variant_image", "gift_card", "body_(html)", "url_handle",
    "product_category", "product_image_url", "image_alt", "variant_skus", "variant_count", "color_variants",
    "option1_name", "option1_value", "option2_name", "option2_value", "option3_name", "option3_value",
    # WooCommerce (English, French, German)
    "short_description", "regular_price", "images", "parent", "ugs", "artikelnummer", "nom", "publié",
    "veröffentlicht", "catégories", "kategorien", "étiquettes", "schlagwörter", "bilder", "beschreibung",
    "kurzbeschreibung", "description_courte", "tarif_régulier", "regulärer_preis", "übergeordnetes_produkt",
    # common sheet headers
    "product", "product_name", "product_id", "item", "item_name", "article", "stock", "quantity", "qty",
    "url", "image", "image_url", "photo", "weight", "ean", "upc", "asin", "currency", "notes",
})


def _known(column: str) -> bool:
    name = column.strip().lower().removeprefix("g:").replace(" ", "_")
    return name in KNOWN_COLUMNS


def describe_columns(columns: list[str]) -> str:
    """``3 columns: id, title`` / ``4 columns (title, price and 2 others)`` /
    ``1 column, not a known name``: what a message may say about a file's header."""
    if not columns:
        return "no columns"
    known = [c.strip() for c in columns if _known(c)]
    others = len(columns) - len(known)
    count = f"{len(columns)} column{'s' if len(columns) != 1 else ''}"
    if not known:
        return f"{count}, none with a known name (names not shown)"
    if not others:
        return f"{count}: {', '.join(known)}"
    return f"{count} ({', '.join(known)} and {others} other{'s' if others != 1 else ''}, names not shown)"
