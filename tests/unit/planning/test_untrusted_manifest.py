"""A previous manifest is untrusted input: a forged one (anyone who can write under the runs
prefix) cannot mark products done that this run did not compute, cannot make the write-back
presign an object outside the run's prefix, and cannot exhaust memory (``/dev/zero``, a
Parquet bomb), read within the catalog's bounds."""
from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from bananaflow.catalog import read_limits
from bananaflow.catalog.loader import load_catalog
from bananaflow.landing.manifest import ManifestRow, write_local
from bananaflow.landing.storage import ImageStore
from bananaflow.planning.delta import split_previous
from bananaflow.planning.jobspec import WritebackSpec, build_job
from bananaflow.planning.work import WorkItem, plan_job
from bananaflow.reports.writeback import merchant_supplemental
from tests.memory_bound import run_bounded
from tests.paths import CATALOG_FIXTURES


@pytest.fixture
def store() -> ImageStore:
    client = boto3.client(
        "s3", endpoint_url="http://127.0.0.1:9", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="wJalrXUtnFEMI",
        region_name="us-east-1", config=Config(signature_version="s3v4"),
    )
    return ImageStore("shop-images", prefix="p", client=client)


def items() -> list[WorkItem]:
    return plan_job(load_catalog(str(CATALOG_FIXTURES / "bom.csv")), build_job(model="gemini-3-pro-image"), "p")


def forged(item: WorkItem, **changes: str) -> ManifestRow:
    values = {"key": f"{item.key_stem}.png", "uri": f"s3://finance/{item.key_stem}.png",
              "derivatives": json.dumps({"amazon-main": "finance/q3-payroll.pdf", "thumb": "finance/x.jpg"}),
              "model": "forged-model", **changes}
    return ManifestRow(run_id="old", row_number=1, sku=item.sku, variant=item.variant, status="succeeded",
                       cost_usd=0.1, **values)  # type: ignore[arg-type]


def test_a_forged_row_only_confirms_the_key_this_run_computed(tmp_path: Path, store: ImageStore) -> None:
    planned = items()
    rows = [forged(planned[0]), forged(planned[1], key=f"finance/{planned[1].sku}/main-0.png")]
    previous = write_local(rows, tmp_path)["parquet"]
    to_make, unchanged = split_previous(planned, str(previous), "r2", store=store, prefix="p")
    assert to_make == [planned[1]]  # a key the run did not compute confirms nothing
    [row] = unchanged
    assert row.key == f"{planned[0].key_stem}.png" and row.uri == f"s3://shop-images/{planned[0].key_stem}.png"
    assert row.derivatives == "" and row.model == planned[0].model  # from the item, not the forged row
    feed = merchant_supplemental(unchanged, store, WritebackSpec(format="merchant"), ["main"]).decode()
    links = [cell for line in feed.splitlines()[1:] for cell in line.split("\t")[1:] if cell]
    assert links and all(urllib.parse.urlsplit(link).path.startswith("/shop-images/p/") for link in links)
    assert "finance" not in feed


@pytest.mark.parametrize("key_suffix", [".png/../../../finance/x", ".PNG?x=1", ".png%2F..%2Ffinance", ""])
def test_odd_extensions_confirm_nothing(tmp_path: Path, store: ImageStore, key_suffix: str) -> None:
    planned = items()
    previous = write_local([forged(planned[0], key=planned[0].key_stem + key_suffix)], tmp_path)["parquet"]
    to_make, unchanged = split_previous(planned, str(previous), "r2", store=store, prefix="p")
    assert unchanged == [] and to_make == planned


def test_a_derivative_beside_the_key_is_kept(tmp_path: Path, store: ImageStore) -> None:
    planned = items()
    beside = f"{planned[0].key_stem}--amazon-main.jpg"
    previous = write_local([forged(planned[0], derivatives=json.dumps(
        {"amazon-main": beside, "thumb": "p/../finance/t.jpg"}))], tmp_path)["parquet"]
    _, [row] = split_previous(planned, str(previous), "r2", store=store, prefix="p")
    assert json.loads(row.derivatives) == {"amazon-main": beside}


def test_dev_zero_as_previous_manifest_is_refused_at_once() -> None:
    code = "from bananaflow.planning.delta import load_previous\nload_previous('/dev/zero')"
    result = run_bounded(code, address_space_mb=1200)
    assert result.error.startswith("ConfigurationError: cannot read previous manifest /dev/zero"), result.error
    assert "is not a regular file" in result.error
    assert result.peak_mb < 300


def test_a_parquet_bomb_as_previous_manifest_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    long = "z" * 1_000_000
    bomb = tmp_path / "manifest.parquet"
    table = pa.table({"run_id": ["r"] * 700, "sku": ["S"] * 700, "variant": ["main"] * 700,
                      "status": ["succeeded"] * 700, "key": [long] * 700})  # 700 MB once expanded
    pq.write_table(table, bomb, use_dictionary=True, compression="zstd")
    assert bomb.stat().st_size < 200_000
    code = f"from bananaflow.planning.delta import load_previous\nload_previous({str(bomb)!r})"
    result = run_bounded(code, address_space_mb=1500, env={read_limits.MAX_BYTES_ENV: str(256 * 2**20)})
    assert "expands past the catalog limit" in result.error, result.error
    assert result.peak_mb < 400, result.peak_mb
