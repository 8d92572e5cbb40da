"""Real Shopify exports (legacy store export and Shopify's 2024 template) through the preset."""
from __future__ import annotations

import json
from pathlib import Path

from bananaflow.catalog.loader import load_catalog
from bananaflow.catalog.shopify import option_kind
from tests.paths import CATALOG_FIXTURES

REAL = CATALOG_FIXTURES / "real"
TEMPLATE_2024 = REAL / "shopify_2024_template_official_sample.csv"
HAIR = REAL / "shopify_legacy_export_hair_store.csv"


def test_shopify_2024_columns_give_images_options_colour_size_and_category() -> None:
    load = load_catalog(str(TEMPLATE_2024))
    assert load.preset == "shopify"
    shirt = load.accepted[0].fields
    assert shirt["sku"] == "physical-product-the-band-t-shirt"
    assert shirt["image_link"] == "https://burst.shopifycdn.com/photos/forest-hiker.jpg?width=1000"
    assert shirt["color"] == "green, gray, red" and shirt["size"] == "Small, Medium, Large, XL"
    assert shirt["category"] == "Apparel & Accessories > Clothing > Clothing Tops > T-Shirts"
    assert shirt["variant_count"] == "12" and shirt["description"].startswith("Celebrate the timeless legacy")
    colours = json.loads(shirt["color_variants"])
    assert [c["color"] for c in colours] == ["green", "gray", "red"]
    assert colours[0]["skus"][:2] == ["TheBandTShirt-SG", "TheBandTShirt-MG"]


def test_option_names_shops_really_use(tmp_path: Path) -> None:
    assert [option_kind(n) for n in ("Colors", "Colour", "Color ", "Sizes", "Size ", "Length ", "Farbe")] == [
        "color", "color", "color", "size", "size", "", "color"]
    renamed = tmp_path / "colors.csv"
    text = TEMPLATE_2024.read_text("utf-8").replace(",Size,", ",Sizes,").replace(",Color,", ",Colors,")
    renamed.write_text(text, "utf-8")
    shirt = load_catalog(str(renamed)).accepted[0].fields
    assert shirt["color"] == "green, gray, red" and shirt["size"] == "Small, Medium, Large, XL"


def test_drafts_archived_and_shipping_protection_are_skipped_and_counted() -> None:
    load = load_catalog(str(HAIR))
    assert [(s.sku, s.reason) for s in load.skipped] == [
        ("routeins", "app pseudo-product (shipping protection)"),
        ("hd-lace-6x6-closure-wig-chocolate-brown-blonde-highlights", "draft product"),
        ("tape-hairs-thin-mongolian-kinky-straight", "archived product"),
    ]
    assert len(load.accepted) == 4 and load.rejected == []
    assert "routeins" not in [r.sku for r in load.accepted]
    everything = load_catalog(str(HAIR), include_unpublished=True)
    assert len(everything.accepted) == 7 and everything.skipped == []


def test_trailing_space_in_an_option_name_and_colour_from_a_second_option() -> None:
    crochet = load_catalog(str(HAIR)).accepted[0].fields
    assert crochet["option1_name"] == "Length" and crochet["color"] == "black"
    assert crochet["options"].startswith("Length: 14 Inches, 16 Inches")


def test_map_sku_to_variant_sku_keeps_shopify_detection() -> None:
    """``--map sku="Variant SKU"`` (the --help example) on an export as it comes."""
    load = load_catalog(str(TEMPLATE_2024), rename={"SKU": "sku"})
    assert load.preset == "shopify"
    assert [r.sku for r in load.accepted] == ["TheBandTShirt-SG", "HRM-EBK-PDF"]
    assert load.accepted[0].fields["handle"] == "physical-product-the-band-t-shirt"
    legacy = load_catalog(str(REAL / "shopify_legacy_export_packt_demo.csv"), rename={"Variant SKU": "sku"})
    assert legacy.preset == "shopify"


def test_the_help_example_map_works_on_the_2024_columns_too() -> None:
    load = load_catalog(str(TEMPLATE_2024), rename={"Variant SKU": "sku"})
    assert load.preset == "shopify" and [r.sku for r in load.accepted] == ["TheBandTShirt-SG", "HRM-EBK-PDF"]
