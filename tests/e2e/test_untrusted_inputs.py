"""One product can't stop the run, and an old manifest can't speak for this one, end to end:
a per-colour job over a Shopify export with ``Grün`` and a JSONL catalog with a malformed
``color_variants`` cell; a forged previous manifest whose rows name keys this run did not
compute and derivatives outside the prefix. Simulator + weed mini + a real Prefect server."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from bananaflow.landing.manifest import ManifestRow, write_local
from bananaflow.landing.storage import ImageStore
from tests.flow_params import flow_params

pytestmark = pytest.mark.e2e

PER_COLOUR = {"variants": [{"name": "main", "prompt": "One {{ title }} in {{ color }} on white", "per_color": True}]}
SHOPIFY = (
    "Handle,Title,Body (HTML),Vendor,Published,Option1 Name,Option1 Value,Variant SKU,Variant Price,Image Src,Status\n"
    "jacke,Jacke,,Nord,TRUE,Farbe,Grün,J-1,10,,active\n"
    "jacke,,,,,,Blau,J-2,10,,\n"
    "jacke,,,,,,黒,J-3,10,,\n"
)


def run(**params):  # noqa: ANN003, ANN201
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images

    return catalog_to_images(**flow_params(**params))


def test_colours_in_any_script_and_a_malformed_cell_do_not_stop_the_run(
    prefect_api, s3_env, provider_env, tmp_path: Path
) -> None:
    shop = tmp_path / "shop.csv"
    shop.write_text(SHOPIFY, encoding="utf-8")
    result = run(catalog=str(shop), bucket="e2e-colours", prefix="c", job=PER_COLOUR, concurrency=2)
    assert result["counts"] == {"succeeded": 3} and result["ok"]
    store = ImageStore("e2e-colours")
    manifest = pd.read_parquet(io.BytesIO(store.get_bytes(result["manifest"]["parquet"].removeprefix("s3://e2e-colours/"))))
    variants = sorted(manifest["variant"])
    assert variants[0] == "main.blau" and variants[1].startswith("main.color-") and variants[2].startswith("main.grun-")
    assert all(key.isascii() for key in manifest["key"])

    lines = tmp_path / "colours.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in (
        {"sku": "GOOD", "title": "Tee", "color": "white",
         "color_variants": json.dumps([{"color": "Grün", "skus": ["G-1"]}, {"color": "Rot", "skus": ["G-2"]}])},
        {"sku": "BAD", "title": "Tee", "color": "white", "color_variants": '[{"color": "red", "skus": "G-3"}]'},
        {"sku": "ALSO-BAD", "title": "Tee", "color": "white", "color_variants": "{not json"},
    )) + "\n", encoding="utf-8")
    result = run(catalog=str(lines), bucket="e2e-colours", prefix="j", job=PER_COLOUR, concurrency=2)
    assert result["counts"] == {"succeeded": 2} and result["rejected"] == 2
    rejected = store.get_bytes(result["rejected_uri"].removeprefix("s3://e2e-colours/")).decode()
    assert "2,BAD,color_variants entry 1: skus must be a list of SKUs" in rejected
    assert '3,ALSO-BAD,"color_variants is not valid JSON' in rejected


def test_a_forged_previous_manifest_confirms_only_keys_this_run_computed(
    prefect_api, s3_env, provider_env, tmp_path: Path
) -> None:
    catalog = tmp_path / "c.csv"
    catalog.write_text("sku,title\nMUG,Mug\nJUG,Jug\n", encoding="utf-8")
    first = run(catalog=str(catalog), bucket="e2e-forged", prefix="shop", concurrency=2)
    assert first["counts"] == {"succeeded": 2}
    store = ImageStore("e2e-forged")
    made = pd.read_parquet(io.BytesIO(store.get_bytes(first["manifest"]["parquet"].removeprefix("s3://e2e-forged/"))))
    mug_key = made[made["sku"] == "MUG"]["key"].iloc[0]
    forged = [
        ManifestRow(run_id="x", row_number=2, sku="MUG", variant="main", status="succeeded", key=mug_key,
                    uri="s3://finance/q3.jpg", derivatives=json.dumps({"merchant": "finance/q3-payroll.jpg"})),
        ManifestRow(run_id="x", row_number=3, sku="JUG", variant="main", status="succeeded",
                    key="finance/JUG/main-000000000000.png"),  # a key this run would not compute
    ]
    path = write_local(forged, tmp_path / "forged")["parquet"]
    catalog.write_text("sku,title\nMUG,Mug\nJUG,Big Jug\n", encoding="utf-8")  # JUG changed: it must be made
    second = run(catalog=str(catalog), bucket="e2e-forged", prefix="shop", previous_manifest=str(path),
                 writeback="merchant", concurrency=2)
    assert second["counts"] == {"succeeded": 1, "skipped_unchanged": 1}
    rows = pd.read_parquet(io.BytesIO(store.get_bytes(second["manifest"]["parquet"].removeprefix("s3://e2e-forged/"))))
    mug = rows[rows["sku"] == "MUG"].iloc[0]
    assert mug["key"] == mug_key and mug["uri"] == f"s3://e2e-forged/{mug_key}" and mug["derivatives"] == ""
    feed = store.get_bytes(second["manifest"]["writeback"].removeprefix("s3://e2e-forged/")).decode()
    assert "finance" not in feed and "/e2e-forged/shop/" in feed
