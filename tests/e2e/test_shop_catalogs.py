"""Shop catalogs end to end: a Shopify export with a three-variant job spec, reference
photos, presets, write-back and delta runs; a Merchant Center feed with s3:// photos and a
group reference. Simulator + weed mini + a real Prefect server."""
from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
from pathlib import Path

import httpx
import pandas as pd
import pytest
from PIL import Image

from bananaflow.landing.storage import ImageStore
from tests.flow_params import flow_params

pytestmark = pytest.mark.e2e
FIXTURES = Path(__file__).parent.parent / "fixtures"

JOB = """
defaults: {size: 1K}
variants:
  - {name: main, template: main.j2, aspect: "1:1", size: 2K, preset: amazon-main, reference: true}
  - {name: lifestyle, template: lifestyle.j2, aspect: "4:5", preset: shopify}
  - {name: banner, prompt: "Wide banner of {{ title }} on the right, empty space left", aspect: "16:9"}
overrides:
  - {match: "Home & Garden > Kitchen & Dining", prompts: {lifestyle: "{{ title }} on a kitchen counter"}}
writeback: {format: shopify, presign_expiry_s: 3600}
"""


def run(**params):  # noqa: ANN003, ANN201
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images

    return catalog_to_images(**flow_params(**params))


def key_of(uri: str, bucket: str) -> str:
    return uri.removeprefix(f"s3://{bucket}/")


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The Shopify fixture with its photos, laid out as a shop keeps them (photos beside the
    catalogs folder, so the shop's folder is configured as a root reference photos may use)."""
    monkeypatch.setenv("BANANAFLOW_REFERENCE_ROOTS", str(tmp_path))
    (tmp_path / "catalogs").mkdir()
    shutil.copy(FIXTURES / "catalogs" / "shopify_products.csv", tmp_path / "catalogs" / "products.csv")
    shutil.copytree(FIXTURES / "photos", tmp_path / "photos")
    (tmp_path / "main.j2").write_text("Studio photo of {{ title }} by {{ brand }}. {{ description | strip_html }} on pure white")
    (tmp_path / "lifestyle.j2").write_text("{{ title }} in a bright living room")
    (tmp_path / "job.yaml").write_text(JOB)
    return tmp_path


def test_shopify_export_three_variants_writeback_and_delta(prefect_api, s3_env, provider_env, shop: Path) -> None:
    sim = provider_env
    catalog = str(shop / "catalogs" / "products.csv")
    first = run(catalog=catalog, bucket="e2e-shopify", prefix="shop", job=str(shop / "job.yaml"), concurrency=4)
    assert first["counts"] == {"succeeded": 9} and first["ok"]
    assert first["rejected"] == 2
    store = ImageStore("e2e-shopify")
    rejected = store.get_bytes(key_of(first["rejected_uri"], "e2e-shopify")).decode()
    assert "11,,row has no Handle" in rejected and "12,ghost-item,empty title" in rejected

    log = sim.request_log()
    assert len(log) == 9
    assert sorted((r["aspect_ratio"], r["image_size"], r["reference_images"]) for r in log) == sorted(
        [("1:1", "2K", 1)] * 3 + [("4:5", "1K", 0)] * 3 + [("16:9", "1K", 0)] * 3
    )

    manifest = pd.read_parquet(io.BytesIO(store.get_bytes(key_of(first["manifest"]["parquet"], "e2e-shopify"))))
    assert sorted(zip(manifest["sku"], manifest["variant"])) == sorted(
        (h, v) for h in ("enamel-mug", "linen-shirt", "oak-board") for v in ("main", "lifestyle", "banner")
    )
    mains = manifest[manifest["variant"] == "main"]
    for derivatives in mains["derivatives"]:
        amazon = json.loads(derivatives)["amazon-main"]
        image = Image.open(io.BytesIO(store.get_bytes(amazon)))
        assert image.format == "JPEG" and image.size == (2048, 2048)
    lifestyle = manifest[manifest["variant"] == "lifestyle"]
    assert all(Image.open(io.BytesIO(store.get_bytes(json.loads(d)["shopify"]))).size == (2048, 2048)
               for d in lifestyle["derivatives"])
    assert set(manifest[manifest["variant"] == "banner"]["derivatives"]) == {""}

    # write-back: the export plus three image rows per handle, URLs that really download
    writeback_key = key_of(first["manifest"]["writeback"], "e2e-shopify")
    assert writeback_key.rsplit("/", 1)[0] == key_of(first["manifest"]["csv"], "e2e-shopify").rsplit("/", 1)[0]
    rows = list(csv.DictReader(io.StringIO(store.get_bytes(writeback_key).decode())))
    original = list(csv.DictReader(open(catalog, encoding="utf-8")))
    assert len(rows) == len(original) + 9
    new = [r for r in rows if r["Image Alt Text"].endswith((" – main", " – lifestyle", " – banner"))]
    assert [(r["Handle"], r["Image Position"]) for r in new if r["Handle"] == "enamel-mug"] == [
        ("enamel-mug", "3"), ("enamel-mug", "4"), ("enamel-mug", "5"),
    ]
    response = httpx.get(new[0]["Image Src"], timeout=10)
    assert response.status_code == 200 and Image.open(io.BytesIO(response.content)).format == "JPEG"
    assert "X-Amz-Expires=3600" in new[0]["Image Src"]

    # delta: one product's title changes; only its three images are paid for
    text = Path(catalog).read_text(encoding="utf-8").replace("Oak Cutting Board", "Oak Chopping Board")
    Path(catalog).write_text(text, encoding="utf-8")
    calls = sim.stats()["requests_total"]
    second = run(catalog=catalog, bucket="e2e-shopify", prefix="shop", job=str(shop / "job.yaml"),
                 previous_manifest=first["manifest"]["parquet"], concurrency=4)
    assert second["counts"] == {"succeeded": 3, "skipped_unchanged": 6}
    assert sim.stats()["requests_total"] == calls + 3
    made = [r for r in sim.request_log()[calls:]]
    assert len(made) == 3
    second_manifest = pd.read_csv(io.BytesIO(store.get_bytes(key_of(second["manifest"]["csv"], "e2e-shopify"))), dtype=str)
    assert set(second_manifest[second_manifest["status"] == "succeeded"]["sku"]) == {"oak-board"}

    third = run(catalog=catalog, bucket="e2e-shopify", prefix="shop", job=str(shop / "job.yaml"),
                previous_manifest="latest", concurrency=4)  # the newest run's manifest: the second
    assert third["counts"] == {"skipped_unchanged": 9} and third["ok"]
    assert sim.stats()["requests_total"] == calls + 3  # not one call
    rows = list(csv.DictReader(io.StringIO(store.get_bytes(key_of(third["manifest"]["writeback"], "e2e-shopify")).decode())))
    assert len(rows) == len(original) + 9  # unchanged images are written back too


def test_merchant_feed_s3_photos_group_reference_and_supplemental_feed(prefect_api, s3_env, provider_env, tmp_path: Path) -> None:
    sim = provider_env
    store = ImageStore("e2e-merchant")
    store.ensure_bucket()
    store.put_bytes("photos/tee.png", (FIXTURES / "photos" / "shirt.png").read_bytes(), "image/png")
    feed = tmp_path / "feed.tsv"
    feed.write_text(
        "id\ttitle\tdescription\tlink\timage_link\tavailability\tprice\tcolor\titem_group_id\n"
        "TEE-RED\tCotton Tee Red\tSoft tee\thttps://s.example/t\ts3://e2e-merchant/photos/tee.png\tin_stock\t25 USD\tred\tTEE\n"
        "TEE-BLUE\tCotton Tee Blue\tSoft tee\thttps://s.example/t\ts3://e2e-merchant/photos/tee.png\tin_stock\t25 USD\tblue\tTEE\n"
        "LAMP\tDesk Lamp\tBrass lamp\thttps://s.example/l\thttp://127.0.0.1:9/lamp.jpg\tin_stock\t89 USD\tbrass\t\n",
        encoding="utf-8",
    )
    job = tmp_path / "job.toml"
    job.write_text('''
[[variants]]
name = "main"
prompt = "{{ title }} in {{ color }} on white"
preset = "google-merchant"
reference = true
[references]
group_reference = true
[writeback]
format = "merchant"
public_base_url = "https://images.example.com/"
''')
    # the feed is read from the bucket, gzipped, as a nightly export job leaves it
    store.put_bytes("feeds/products.tsv.gz", gzip.compress(feed.read_bytes()), "application/gzip")
    summary = run(catalog="s3://e2e-merchant/feeds/products.tsv.gz", bucket="e2e-merchant", prefix="feed",
                  job=str(job), concurrency=3)
    assert summary["counts"] == {"succeeded": 2, "failed": 1}
    failure = summary["failures"][0]
    assert failure["sku"] == "LAMP" and failure["error_class"] == "ReferencePhotoError"
    assert "cannot be used (refused or unavailable)" in failure["error_message"]  # loopback: refused unasked
    log = sim.request_log()
    assert [r["reference_images"] for r in log] == [1, 2]  # red first; blue gets red's image too
    supplemental = store.get_bytes(key_of(summary["manifest"]["writeback"], "e2e-merchant")).decode()
    lines = [line.split("\t") for line in supplemental.splitlines()]
    assert lines[0] == ["id", "image_link", "additional_image_link"]
    assert {line[0] for line in lines[1:]} == {"TEE-RED", "TEE-BLUE"}
    assert all(line[1].startswith("https://images.example.com/feed/TEE-") and line[1].endswith("--google-merchant.jpg")
               for line in lines[1:])
