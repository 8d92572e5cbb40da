"""Real WooCommerce exports: the official sample data and a French-locale admin's export."""
from __future__ import annotations

from bananaflow.catalog.loader import load_catalog
from tests.paths import CATALOG_FIXTURES

REAL = CATALOG_FIXTURES / "real"


def test_woocommerce_sample_folds_variations_into_their_parent() -> None:
    load = load_catalog(str(REAL / "woocommerce_sample_products.csv"))
    assert load.preset == "woocommerce" and load.rejected == [] and load.skipped == []
    skus = [r.sku for r in load.accepted]
    assert len(skus) == 18 and "woo-vneck-tee" in skus and "woo-vneck-tee-red" not in skus
    tee = load.accepted[skus.index("woo-vneck-tee")].fields
    assert tee["title"] == "V-Neck T-Shirt" and tee["color"] == "Blue, Green, Red"
    assert tee["image_link"].startswith("https://") and tee["additional_image_link"]


def test_french_admin_export_with_localised_headers() -> None:
    load = load_catalog(str(REAL / "woocommerce_export_french_locale.csv"))
    assert load.preset == "woocommerce"
    first = load.accepted[0].fields
    assert first["sku"] == "EV- 0001" and first["title"] == 'Ensemble Lacoste Junior "Chic Élégant"'
    assert first["size"].startswith("04 ans, 06 ans")
    assert len(load.accepted) == 7
