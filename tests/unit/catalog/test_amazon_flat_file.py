"""Marketplace report sheets with lines above their header: a real Amazon flat file (one
preamble line), and the newer template shape (preamble, a row of localised labels, then the
attribute names), read as catalogs with rows numbered by their file line."""
from __future__ import annotations

from pathlib import Path

import pytest

from bananaflow.catalog.loader import load_catalog
from bananaflow.errors import CatalogError
from tests.paths import CATALOG_FIXTURES

FLAT_FILE = CATALOG_FIXTURES / "real" / "amazon_flat_file_clothing_2xu.txt"


def test_a_real_amazon_flat_file_with_a_preamble_line_is_read() -> None:
    load = load_catalog(str(FLAT_FILE))
    assert load.preset == "amazon" and load.rejected == []
    assert len(load.accepted) == 24  # the 24 child rows are the products
    assert [(s.row_number, s.sku) for s in load.skipped] == [(3, "MT1535d"), (10, "MT1599d"), (17, "MT1603b")]
    first = load.accepted[0]
    assert (first.row_number, first.sku) == (4, "MT1535d-BLK-XS")  # line 4 of the file
    assert first.fields["title"] == "2XU Men's Elite LD Swim Skin" and first.fields["brand"] == "2XU"
    assert (first.fields["color"], first.fields["size"], first.fields["price"]) == ("Black / Silver", "XS", "479.95")
    assert first.fields["item_group_id"] == "MT1535d"
    assert first.fields["image_link"].endswith("/mt1535d/300/mt1535d.jpg")
    assert "TemplateType=Clothing" not in " ".join(load.columns)


def test_the_newer_template_shape_finds_the_attribute_row(tmp_path: Path) -> None:
    path = tmp_path / "Flat.File.Shoes.txt"
    path.write_text(
        "TemplateType=fptcustom\tVersion=2023.1116\tTemplateSignature=U0hPRVM=\tsettings=contentLanguageTag=de_DE\n"
        "Verkäufer-SKU\tProduktname\tMarkenname\tURL des Hauptbilds\tURL weiteres Bild 1\tFarbe\n"
        "item_sku\titem_name\tbrand_name\tmain_image_url\tother_image_url1\tcolor_name\n"
        "RUN-1\tLaufschuh Blau\tTrailhead\thttps://cdn.example.com/run-1.jpg\thttps://cdn.example.com/run-1b.jpg\tBlau\n",
        encoding="utf-8",
    )
    load = load_catalog(str(path))
    assert load.preset == "amazon"
    [row] = load.accepted
    assert (row.row_number, row.sku, row.fields["title"], row.fields["color"]) == (4, "RUN-1", "Laufschuh Blau", "Blau")
    assert row.fields["additional_image_link"] == "https://cdn.example.com/run-1b.jpg"


def test_a_preamble_without_a_header_row_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "report.txt"
    path.write_text("TemplateType=fptcustom\tVersion=2023\n" + "a\tb\n" * 8, encoding="utf-8")
    with pytest.raises(CatalogError, match="starts with a marketplace preamble but no header row"):
        load_catalog(str(path))


def test_a_plain_csv_whose_first_cell_has_an_equals_sign_in_a_value_is_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("sku,title\nA=1,Mug\n", encoding="utf-8")
    assert [r.sku for r in load_catalog(str(path)).accepted] == ["A=1"]
