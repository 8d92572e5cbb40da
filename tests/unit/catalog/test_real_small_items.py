"""The smaller problems real exports showed: internal tags, protocol-relative links, trailing
empty fields, a list without a header, a list without SKUs."""
from __future__ import annotations

from pathlib import Path

import pytest

from bananaflow.catalog import load_catalog, sku_slug
from bananaflow.catalog.shopify import product_tags
from bananaflow.errors import CatalogError
from tests.paths import CATALOG_FIXTURES

REAL = CATALOG_FIXTURES / "real"
PACKT = REAL / "shopify_legacy_export_packt_demo.csv"
GBK = REAL / "chinese_product_list_gbk.csv"


def test_internal_shopify_tags_stay_out_of_the_tags_field(tmp_path: Path) -> None:
    assert product_tags("Black, import_2021_02_11_033502, review-pricing, Lamp, sync-4432198") == "Black, Lamp"
    tagged = tmp_path / "tagged.csv"
    tagged.write_text(PACKT.read_text("utf-8").replace('"Black, Lamp"', '"Black, import_2021_02_11_033502, Lamp, review-pricing"'),
                      "utf-8")
    lamp = next(r for r in load_catalog(str(tagged)).accepted if "import_2021" in r.fields["Tags"])
    assert lamp.fields["tags"] == "Black, Lamp"


def test_protocol_relative_image_links_are_web_links(tmp_path: Path) -> None:
    source = REAL / "google_merchant_style_feed_awin_bilali.csv"
    relative = tmp_path / "feed.csv"
    relative.write_text(source.read_text("utf-8").replace("https://cdn.shopify.com", "//cdn.shopify.com"), "utf-8")
    load = load_catalog(str(relative))
    assert load.rejected == []
    assert all(r.fields["image_link"].startswith("https://cdn.shopify.com/") for r in load.accepted)


def test_trailing_empty_fields_are_not_a_quoting_problem(tmp_path: Path) -> None:
    source = REAL / "google_merchant_style_feed_awin_bilali.csv"
    lines = source.read_text("utf-8").splitlines()
    padded = tmp_path / "trailing.csv"
    padded.write_text("\n".join([lines[0]] + [line + ",,," for line in lines[1:]]) + "\n", "utf-8")
    expected = load_catalog(str(source))
    load = load_catalog(str(padded))
    assert load.rejected == [] and len(load.accepted) == len(expected.accepted)


def test_a_list_without_a_header_says_so() -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog(str(GBK))
    assert "seems to have no header line" in caught.value.message
    assert "add a header line such as 'sku,title,price'" in caught.value.message


def test_sku_from_gives_a_scraped_list_skus(tmp_path: Path) -> None:
    text = GBK.read_bytes().decode("gb18030")
    with_header = tmp_path / "list.csv"
    with_header.write_text("item,qty,title,price\n" + text, "utf-8")
    load = load_catalog(str(with_header), sku_from="title")
    assert load.accepted[0].sku == sku_slug("金士顿 DT100G3 16G USB3.0 高速16g优盘 U盘")
    assert load.accepted[0].sku.startswith("金士顿-dt100g3")
    assert sku_slug("https://shop.example.com/products/blue-mug?variant=2") == "blue-mug"
    with pytest.raises(CatalogError, match="--sku-from name: .* has no such column"):
        load_catalog(str(with_header), sku_from="name")
