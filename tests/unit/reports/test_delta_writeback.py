"""Delta runs from a previous manifest, and writing image URLs back for Shopify / Merchant."""
from __future__ import annotations

import csv
import io
import json
import urllib.parse
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from bananaflow.catalog.loader import load_catalog
from bananaflow.errors import ConfigurationError
from bananaflow.landing.manifest import ManifestRow, read_manifest, write_local
from bananaflow.landing.storage import ImageStore
from bananaflow.planning.delta import split_previous, split_unchanged
from bananaflow.planning.jobspec import WritebackSpec, build_job
from bananaflow.planning.work import plan_job
from bananaflow.reports.writeback import merchant_supplemental, shopify_csv
from tests.paths import CATALOG_FIXTURES

FIXTURES = CATALOG_FIXTURES
SHOPIFY = str(FIXTURES / "shopify_products.csv")


def done_rows(items, status: str = "succeeded") -> list[ManifestRow]:  # noqa: ANN001
    return [
        ManifestRow(run_id="r1", row_number=i.row_number, sku=i.sku, variant=i.variant, status=status,
                    key=f"{i.key_stem}.png", uri=f"s3://b/{i.key_stem}.png", cost_usd=0.134)
        for i in items
    ]


def test_only_new_or_changed_products_are_generated(tmp_path: Path) -> None:
    job = build_job(model="gemini-3-pro-image")
    first = plan_job(load_catalog(str(FIXTURES / "bom.csv")), job, "p")
    previous = write_local(done_rows(first), tmp_path / "run1")["parquet"]
    changed = tmp_path / "catalog.csv"
    changed.write_text("sku,title,color\n00123,Blue Mug,blue\n0042,Green Jug,\nNEW-1,Lamp,\n", encoding="utf-8")
    second = plan_job(load_catalog(str(changed)), job, "p")
    to_make, unchanged = split_previous(second, str(previous), "r2")
    assert [i.sku for i in to_make] == ["0042", "NEW-1"]  # 0042's title changed, NEW-1 is new
    assert [(r.sku, r.status, r.run_id, r.cost_usd) for r in unchanged] == [("00123", "skipped_unchanged", "r2", 0.0)]
    assert unchanged[0].key == f"{first[0].key_stem}.png"


def test_a_column_no_template_uses_does_not_count_as_a_change(tmp_path: Path) -> None:
    job = build_job(model="gemini-3-pro-image")
    before = tmp_path / "a.csv"
    before.write_text("sku,title,stock\nA,Mug,5\n")
    after = tmp_path / "b.csv"
    after.write_text("sku,title,stock\nA,Mug,0\n")
    items = plan_job(load_catalog(str(before)), job, "p")
    split = split_unchanged(plan_job(load_catalog(str(after)), job, "p"), done_rows(items), "r2")
    assert split.to_make == [] and len(split.unchanged) == 1


def test_failed_and_qa_failed_items_are_made_again() -> None:
    job = build_job(model="gemini-3-pro-image")
    items = plan_job(load_catalog(str(FIXTURES / "bom.csv")), job, "p")
    previous = done_rows(items[:1], "failed") + done_rows(items[1:], "qa_failed")
    assert split_unchanged(items, previous, "r2").to_make == items


def test_missing_or_foreign_previous_manifest_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        split_previous([], str(tmp_path / "nope.csv"), "r")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ConfigurationError, match="not a bananaflow manifest"):
        split_previous([], str(tmp_path / "other.csv"), "r")


def test_manifests_written_before_the_qa_columns_still_read(tmp_path: Path) -> None:
    paths = write_local(done_rows(plan_job(load_catalog(str(FIXTURES / "bom.csv")), build_job(model="gemini-3-pro-image"), "p")), tmp_path)
    lines = paths["csv"].read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, c in enumerate(header) if c not in ("qa", "derivatives")]
    old = tmp_path / "old.csv"
    old.write_text("\n".join(",".join(line.split(",")[i] for i in keep) for line in lines) + "\n")
    rows = read_manifest(old)
    assert len(rows) == 2 and rows[0].derivatives == "" and rows[0].status == "succeeded"


@pytest.fixture
def store() -> ImageStore:
    """Presigning is local computation: a client for an endpoint nobody listens on will do."""
    client = boto3.client(
        "s3", endpoint_url="http://127.0.0.1:9", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="wJalrXUtnFEMI",
        region_name="us-east-1", config=Config(signature_version="s3v4"),
    )
    return ImageStore("shop-images", client=client)


def shopify_rows() -> list[ManifestRow]:
    rows = []
    for sku in ("enamel-mug", "oak-board"):
        for variant in ("main", "lifestyle"):
            derivatives = json.dumps({"amazon-main": f"p/{sku}/{variant}-1--amazon-main.jpg", "thumb": "t.jpg"}) if variant == "main" else ""
            rows.append(ManifestRow(run_id="r", row_number=2, sku=sku, variant=variant, status="succeeded",
                                    key=f"p/{sku}/{variant}-1.png", derivatives=derivatives))
    rows.append(ManifestRow(run_id="r", row_number=5, sku="linen-shirt", variant="main", status="failed"))
    return rows


def test_shopify_write_back_adds_image_rows_after_each_handle(store: ImageStore) -> None:
    spec = WritebackSpec(format="shopify", public_base_url="https://cdn.example.com/img/")
    out = shopify_csv(SHOPIFY, shopify_rows(), store, spec, ["main", "lifestyle"]).decode()
    records = list(csv.reader(io.StringIO(out)))
    original = list(csv.reader(open(SHOPIFY, encoding="utf-8")))
    assert records[0] == original[0]
    handles = [r[0] for r in records[1:]]
    assert handles[:5] == ["enamel-mug"] * 5 and handles[5:8] == ["linen-shirt"] * 3
    new_mug = records[4:6]
    src, pos, alt = (original[0].index(c) for c in ("Image Src", "Image Position", "Image Alt Text"))
    assert [(r[src], r[pos], r[alt]) for r in new_mug] == [
        ("https://cdn.example.com/img/p/enamel-mug/main-1--amazon-main.jpg", "3", "Enamel Camp Mug – main"),
        ("https://cdn.example.com/img/p/enamel-mug/lifestyle-1.png", "4", "Enamel Camp Mug – lifestyle"),
    ]
    assert [r for r in records if r[0] == "linen-shirt"] == [r for r in original if r[0] == "linen-shirt"]
    assert len(records) == len(original) + 4


def test_merchant_supplemental_feed_with_presigned_urls(store: ImageStore) -> None:
    spec = WritebackSpec(format="merchant", presign_expiry_s=3600)
    out = merchant_supplemental(shopify_rows(), store, spec, ["main", "lifestyle"]).decode()
    rows = list(csv.reader(io.StringIO(out), delimiter="\t"))
    assert rows[0] == ["id", "image_link", "additional_image_link"]
    assert [r[0] for r in rows[1:]] == ["enamel-mug", "oak-board"]
    main = urllib.parse.urlsplit(rows[1][1])
    assert main.path == "/shop-images/p/enamel-mug/main-1--amazon-main.jpg"
    query = urllib.parse.parse_qs(main.query)
    assert query["X-Amz-Expires"] == ["3600"] and query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert "wJalrXUtnFEMI" not in out
    assert "/p/enamel-mug/lifestyle-1.png" in rows[1][2]


def test_shopify_write_back_finds_the_handle_of_a_variant_sku(store: ImageStore) -> None:
    rows = [ManifestRow(run_id="r", row_number=2, sku="OAK-S", variant="main", status="skipped_unchanged",
                        key="p/OAK-S/main-1.png")]
    spec = WritebackSpec(format="shopify", public_base_url="https://cdn.example.com/")
    out = list(csv.DictReader(io.StringIO(shopify_csv(SHOPIFY, rows, store, spec, ["main"]).decode())))
    added = [r for r in out if r["Image Src"] == "https://cdn.example.com/p/OAK-S/main-1.png"]
    assert [(r["Handle"], r["Image Position"]) for r in added] == [("oak-board", "2")]
