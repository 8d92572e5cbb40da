"""Per-colour variant images for a real Shopify export with a colour option: planned one per
distinct colour (the first colour's image the reference for the rest) and written back as
each colour's ``Variant Image``."""
from __future__ import annotations

import csv
import io

import boto3
from botocore.config import Config

from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.storage import ImageStore
from bananaflow.options import ImageOptions, RunOptions
from bananaflow.planning.jobspec import Job, WritebackSpec, build_job
from bananaflow.planning.plan import plan_catalog
from bananaflow.reports.writeback import shopify_csv
from tests.paths import CATALOG_FIXTURES

TEMPLATE_2024 = str(CATALOG_FIXTURES / "real" / "shopify_2024_template_official_sample.csv")
HAIR = str(CATALOG_FIXTURES / "real" / "shopify_legacy_export_hair_store.csv")


def spec_job(spec: dict) -> Job:
    """The job a spec given as data describes (as a Prefect parameter gives it)."""
    return build_job(RunOptions(images=ImageOptions(job=spec)), model="gemini-3-pro-image")


PER_COLOR = {
    "variants": [
        {"name": "main", "prompt": "Studio photo of one {{ title }} in {{ color }}.", "per_color": True, "reference": True},
        {"name": "lifestyle", "prompt": "{{ title }} in use."},
    ],
}


def _store() -> ImageStore:
    client = boto3.client(
        "s3", endpoint_url="http://127.0.0.1:9", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="wJalrXUtnFEMI",
        region_name="us-east-1", config=Config(signature_version="s3v4"),
    )
    return ImageStore("shop-images", client=client)


def test_one_image_per_distinct_colour_with_the_first_as_reference() -> None:
    job = spec_job(PER_COLOR)
    items = plan_catalog(TEMPLATE_2024, job, prefix="p").items
    shirt = [i for i in items if i.sku == "physical-product-the-band-t-shirt"]
    assert [i.variant for i in shirt] == ["main.green", "main.gray", "main.red", "lifestyle"]
    assert [i.prompt for i in shirt[:3]] == [
        f"Studio photo of one Physical Product “The Band” T-Shirt in {c}." for c in ("green", "gray", "red")]
    assert shirt[0].group_reference_stem == ""
    assert shirt[1].group_reference_stem == shirt[0].key_stem == shirt[2].group_reference_stem
    assert shirt[0].reference_links == ("https://burst.shopifycdn.com/photos/forest-hiker.jpg?width=1000",)
    # a product without a colour option keeps one image per variant
    ebook = [i.variant for i in items if i.sku == "digital-product-the-history-of-rock-music"]
    assert ebook == ["main", "lifestyle"]


def test_reference_photos_off_means_no_sibling_reference() -> None:
    spec = {"variants": [{"name": "main", "prompt": "{{ title }} in {{ color }}", "per_color": True}]}
    items = plan_catalog(TEMPLATE_2024, spec_job(spec)).items
    assert len(items) == 4 and all(not i.group_reference_stem and not i.reference_links for i in items)


def test_colour_images_are_written_back_as_variant_image_of_that_colour() -> None:
    job = spec_job(PER_COLOR)
    items = plan_catalog(TEMPLATE_2024, job, prefix="p").items
    made = [ManifestRow(run_id="r", row_number=i.row_number, sku=i.sku, variant=i.variant, status="succeeded",
                        key=f"{i.key_stem}.png") for i in items]
    spec = WritebackSpec(format="shopify", public_base_url="https://cdn.example.com/")
    out = shopify_csv(TEMPLATE_2024, made, _store(), spec, ["main", "lifestyle"]).decode()
    rows = list(csv.DictReader(io.StringIO(out)))
    shirt = [r for r in rows if r["URL handle"] == "physical-product-the-band-t-shirt" and r["SKU"]]
    key_of = {i.variant: f"https://cdn.example.com/{i.key_stem}.png" for i in items if i.sku.startswith("physical")}
    assert len(shirt) == 12
    for row in shirt:
        assert row["Variant image URL"] == key_of[f"main.{row['Option2 value']}"], row["SKU"]
    # per-colour images are not added again as image rows; the lifestyle image is
    added = [r for r in rows if not r["SKU"] and r["URL handle"] == "physical-product-the-band-t-shirt"
             and "cdn.example.com" in (r.get("Image Src") or r.get("Product image URL") or "")]
    assert len(added) == 1

