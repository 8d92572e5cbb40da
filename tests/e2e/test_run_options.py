"""A retry run forwards the options of the run it retries whole, so it reads the catalog the
same way (column map included) and lands on the same keys."""
from __future__ import annotations

import csv

import pytest

from tests.e2e.conftest import products

pytestmark = pytest.mark.e2e


def test_a_retry_run_reuses_the_column_map_and_lands_on_the_same_keys(prefect_api, s3_env, provider_env, tmp_path):
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images
    from bananaflow_prefect.flows.retry_flow import retry_unfinished

    catalog = tmp_path / "export.csv"  # a supplier's sheet: the SKU column has another name
    with catalog.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["Artikelnummer", "title", "color"])
        writer.writeheader()
        writer.writerows({"Artikelnummer": p["sku"], "title": p["title"], "color": p["color"]} for p in products(4, "MAP"))
    # one product fails its one attempt and both chunk retries (500s), then works: the retry makes it
    provider_env.configure(script={"model MAP002": ["500", "500", "500", "ok"]})
    options = dict(
        reading={"column_map": {"Artikelnummer": "sku"}},
        delivery={"bucket": "e2e-retry-map", "prefix": "shop"},
        images={"image_size": "2K", "aspect_ratio": "4:5"},
        limits={"max_in_flight": 2, "max_attempts": 1},
    )
    first = catalog_to_images(catalog=str(catalog), **options)
    assert first["counts"] == {"succeeded": 3, "failed": 1}, first["counts"]

    retried = retry_unfinished(catalog=str(catalog), **options)
    counts = retried["summary"]["counts"]
    assert counts == {"succeeded": 1, "skipped_exists": 3}, (
        "the images of the first run are found under the same keys, the deferred ones are made"
    )
