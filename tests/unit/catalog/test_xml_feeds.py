"""Real Merchant Center XML feeds (RSS 2.0 and Atom with the g: namespace)."""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from bananaflow.catalog.loader import load_catalog
from bananaflow.errors import CatalogError
from tests.paths import CATALOG_FIXTURES

REAL = CATALOG_FIXTURES / "real"
RSS = REAL / "google_merchant_rss_velofant.xml"
ATOM = REAL / "google_merchant_atom_emirates_gifts_MALFORMED.xml"


def test_rss_feed_with_g_namespace_reads_as_a_merchant_feed() -> None:
    load = load_catalog(str(RSS))
    assert load.preset == "merchant" and load.rejected == []
    assert len(load.accepted) == 9
    first = load.accepted[0]
    assert (first.row_number, first.sku) == (8, "CY-ARK-CHR-57")
    assert first.fields["title"] == "A R K I P E L A G O - FRAMEKIT"
    assert first.fields["description"].startswith("Vårt första ramset")
    assert first.fields["category"] == "Cykelramar" and "SE" in first.fields["shipping"]
    assert any(r.fields["image_link"].startswith("https://") for r in load.accepted)
    assert "<?xml" not in " ".join(load.columns)


def test_rss_feed_gzipped_and_in_utf16(tmp_path: Path) -> None:
    packed = tmp_path / "feed.xml.gz"
    packed.write_bytes(gzip.compress(RSS.read_bytes()))
    assert [r.sku for r in load_catalog(str(packed)).accepted] == [r.sku for r in load_catalog(str(RSS)).accepted]
    wide = tmp_path / "feed16.xml"
    wide.write_bytes(RSS.read_text("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"))
    assert load_catalog(str(wide)).accepted[0].fields["description"].startswith("Vårt första ramset")


def test_malformed_atom_feed_is_one_clear_line() -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog(str(ATOM))
    message = caught.value.message
    assert message == (f"{ATOM.name} is not well-formed XML (line 25, column 102: mismatched tag); "
                       "fix the feed or export it again")


def test_atom_feed_once_repaired_reads_with_g_attributes_winning(tmp_path: Path) -> None:
    fixed = tmp_path / "atom.xml"
    fixed.write_text(ATOM.read_text("utf-8").replace("</g:category>", "</g:google_product_category>"), "utf-8")
    load = load_catalog(str(fixed))
    assert load.preset == "merchant"
    # Merchant Center's 50-character id limit, counted on the feed's own line
    assert [(r.row_number, r.reason) for r in load.rejected] == [(15, "id is 52 characters; the limit is 50")]
    watch = load.accepted[0].fields
    assert watch["sku"] == "https://emirates-gifts.arabsad.com/product/watch_1"
    assert watch["title"] == "رولكس يخت ماستر فضي فاخر" and watch["brand"] == "Rolex"
    assert watch["description"] == "ساعة رولكس يخت ماستر فضية فاخرة عالية الجودة"
    assert watch["link"].startswith("https://emirates-gifts.arabsad.com/product-details.html")
    assert watch["google_product_category"] == "Apparel & Accessories > Jewelry > Watches"
    assert watch["category"] == "watches"


def test_entity_declarations_are_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaa">]><rss><channel><item>'
                    "<g:id xmlns:g='http://base.google.com/ns/1.0'>&a;</g:id></item></channel></rss>")
    with pytest.raises(CatalogError, match="declares a DOCTYPE or entities"):
        load_catalog(str(bomb))
