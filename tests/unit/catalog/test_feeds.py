"""Real export files through the catalog presets, encodings and column mapping."""
from __future__ import annotations

from pathlib import Path

import pytest

from bananaflow.catalog.loader import load_catalog
from bananaflow.errors import CatalogError
from tests.paths import CATALOG_FIXTURES

FIXTURES = CATALOG_FIXTURES


def fx(name: str) -> str:
    return str(FIXTURES / name)


def test_shopify_export_folds_variant_and_image_rows_into_one_product_per_handle() -> None:
    load = load_catalog(fx("shopify_products.csv"))
    assert load.preset == "shopify"
    assert [(r.row_number, r.sku) for r in load.accepted] == [(2, "enamel-mug"), (5, "linen-shirt"), (8, "oak-board")]
    mug = load.accepted[0].fields
    assert mug["title"] == "Enamel Camp Mug"
    assert mug["variant_skus"] == "MUG-BLU, MUG-GRN, MUG-CRM" and mug["variant_count"] == "3"
    assert mug["options"] == "Color: Blue, Green, Cream" and mug["color"] == "Blue, Green, Cream"
    assert mug["image_link"] == "../photos/mug.png"
    assert mug["additional_image_link"] == "https://cdn.example.com/mug-2.jpg"
    assert mug["product_type"] == "Mugs" and mug["category"].startswith("Home & Garden > Kitchen")
    assert mug["description"].startswith("<p>Speckled") and mug["Body (HTML)"] == mug["description"]
    shirt = load.accepted[1].fields
    assert shirt["options"] == "Size: S, M, L; Color: Sand" and shirt["size"] == "S, M, L"
    assert [(r.row_number, r.sku, r.reason) for r in load.rejected] == [
        (11, "", "row has no Handle; every Shopify row needs one"),
        (12, "ghost-item", "empty title"),
    ]


def test_shopify_preset_with_a_sku_mapping_uses_the_first_variant_sku() -> None:
    load = load_catalog(fx("shopify_products.csv"), preset="shopify", rename={"Variant SKU": "sku"})
    assert [r.sku for r in load.accepted] == ["MUG-BLU", "SH-S-SND", "OAK-S"]
    assert load.accepted[0].fields["handle"] == "enamel-mug"


def test_merchant_center_feed_with_g_prefixes_and_its_rejections() -> None:
    load = load_catalog(fx("merchant_feed_gmc.tsv"))
    assert load.preset == "merchant"
    assert [r.sku for r in load.accepted] == ["TEE-RED-M", "TEE-BLU-M"]
    tee = load.accepted[0].fields
    assert tee["item_group_id"] == "TEE-1" and tee["image_link"] == "https://cdn.example.com/tee-red.jpg"
    assert tee["category"] == "Apparel > Shirts > T-Shirts"
    reasons = {r.row_number: r.reason for r in load.rejected}
    assert reasons[4].startswith("bad image_link 'ftp://files.example.com/lamp.jpg': scheme 'ftp'")
    assert reasons[5] == "id is 54 characters; the limit is 50"
    assert reasons[6] == "duplicate sku 'TEE-RED-M' (first on row 2)"


def test_gbk_sheet_is_detected_and_can_be_named(tmp_path: Path) -> None:
    load = load_catalog(fx("gbk_products.csv"))
    assert [(r.sku, r.fields["title"]) for r in load.accepted] == [("CN-001", "陶瓷马克杯"), ("CN-002", "不锈钢保温杯")]
    assert load.rejected[0].row_number == 4 and load.rejected[0].reason == "missing sku"
    named = load_catalog(fx("gbk_products.csv"), encoding="GBK")
    assert named.accepted[1].fields["color"] == "黑色"
    # cp1252 text is not mistaken for Chinese
    latin = tmp_path / "latin.csv"
    latin.write_bytes("sku,title\nX1,Café crème brûlée\n".encode("cp1252"))
    assert load_catalog(str(latin)).accepted[0].fields["title"] == "Café crème brûlée"


@pytest.mark.parametrize(
    ("name", "accepted", "rejected"),
    [
        ("products.xlsx", ["00501", "00502"], [(4, "00503", "empty title")]),
        ("products.parquet", ["P-1", "P-2"], []),
        ("products.json", ["J-1"], [(2, "J-2", "empty title")]),
    ],
)
def test_spreadsheet_and_json_fixtures(name: str, accepted: list[str], rejected: list[tuple]) -> None:
    load = load_catalog(fx(name))
    assert [r.sku for r in load.accepted] == accepted
    assert [(r.row_number, r.sku, r.reason) for r in load.rejected] == rejected


def test_map_option_replaces_a_column_and_names_a_missing_one(tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("Artikelnummer,Bezeichnung,sku\nA-1,Becher,old\n", encoding="utf-8")
    load = load_catalog(str(sheet), rename={"Artikelnummer": "sku", "Bezeichnung": "title"})
    assert load.accepted[0].sku == "A-1" and load.accepted[0].fields["title"] == "Becher"
    with pytest.raises(CatalogError, match="has no column 'Variant SKU' to map"):
        load_catalog(str(sheet), rename={"Variant SKU": "sku"})


@pytest.mark.parametrize(
    ("link", "reason"),
    [
        ("javascript:alert(1)", "is not an http(s) URL"),
        ("https://", "has no host"),
        ("s3://bucket-only", "is not s3://bucket/key"),
        ("photos/my mug.jpg", "contains whitespace"),
    ],
)
def test_bad_image_links_are_row_rejections(tmp_path: Path, link: str, reason: str) -> None:
    path = tmp_path / "c.csv"
    path.write_text(f"sku,title,image_link\nA,Mug,{link}\nB,Cup,https://cdn.example.com/b.jpg\nC,Bowl,C:\\photos\\c.jpg\n")
    load = load_catalog(str(path))
    assert [r.sku for r in load.accepted] == ["B", "C"]
    assert reason in load.rejected[0].reason and load.rejected[0].row_number == 2


def test_unknown_preset_is_a_clear_error() -> None:
    with pytest.raises(CatalogError, match="unknown catalog preset 'magento'; known: shopify, merchant, woocommerce"):
        load_catalog(fx("bom.csv"), preset="magento")
