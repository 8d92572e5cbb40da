"""Manifest rows → DataFrame → CSV + Parquet, locally and on a real ``weed mini``."""
from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from bananaflow.devstack.local_s3 import LocalS3Server
from bananaflow.landing.manifest import COLUMNS, ManifestRow, manifest_frame, read_manifest, write_local, write_manifest
from bananaflow.landing.storage import ImageStore
from bananaflow.landing.verdict import CheckResult, Verdict

EXPECTED_COLUMNS = (
    "run_id row_number sku variant status error_class error_message key uri model endpoint image_size aspect_ratio "
    "mime_type bytes width height latency_s attempts prompt_tokens image_tokens output_tokens cost_usd "
    "prompt_sha256 started_at finished_at mode batch_name qa derivatives task_run_id retryable "
    "verdicts qa_attempts qa_reasons judge_cost_usd"
).split()
T0 = datetime(2026, 11, 28, 3, 0, 0, 123456, tzinfo=UTC)


def sample_rows() -> list[ManifestRow]:
    return [
        ManifestRow(
            run_id="run-1", row_number=2, sku="00123", variant="main", status="succeeded",
            key="shop/00123/main-abc.png", uri="s3://images/shop/00123/main-abc.png",
            model="gemini-3-pro-image-preview", image_size="2K", aspect_ratio="1:1", mime_type="image/png",
            bytes=1234567, width=2048, height=2048, latency_s=12.5, attempts=1, prompt_tokens=310,
            image_tokens=1120, output_tokens=1210, cost_usd=0.134, prompt_sha256="a" * 64,
            started_at=T0, finished_at=T0 + timedelta(seconds=12.5),
        ),
        ManifestRow(
            run_id="run-1", row_number=3, sku="NA", variant="main", status="blocked",
            error_class="ContentBlocked", error_message='safety: "IMAGE_SAFETY", line1\nline2',
            model="gemini-3-pro-image-preview", attempts=1, started_at="2026-11-28T03:00:01Z",
        ),
        ManifestRow(run_id="run-1", row_number=None, sku="Tasse à café", variant="lifestyle", status="deferred"),
        ManifestRow(run_id="run-1", row_number=5, sku="00125", variant="main", status="failed",
                    error_class="ServerError", attempts=5, retryable=True),
    ]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageStore]:
    """A store whose client, and read_manifest's s3:// reads, come from the standard env."""
    with LocalS3Server(tmp_path_factory.mktemp("s3")) as server, pytest.MonkeyPatch.context() as patch:
        for name, value in server.env().items():
            patch.setenv(name, value)
        s = ImageStore("manifests", prefix="shop")
        s.ensure_bucket()
        yield s


def test_columns_are_exactly_the_contract() -> None:
    assert [f.name for f in fields(ManifestRow)] == EXPECTED_COLUMNS
    assert list(COLUMNS) == EXPECTED_COLUMNS


def test_reading_one_products_rows_from_either_format(tmp_path: Path) -> None:
    rows = sample_rows()
    paths = write_local(rows, tmp_path)
    wanted = rows[0].sku
    for path in paths.values():
        assert read_manifest(path, sku=wanted) == [r for r in rows if r.sku == wanted]
        assert read_manifest(path, sku="no such product") == []


def test_a_manifest_written_before_the_mode_columns_still_reads(tmp_path: Path) -> None:
    paths = write_local(sample_rows(), tmp_path)
    later = ["mode", "batch_name", "task_run_id", "retryable"]
    old = pd.read_csv(paths["csv"], dtype=str, keep_default_na=False).drop(columns=later)
    old.to_csv(tmp_path / "old.csv", index=False)
    pd.read_parquet(paths["parquet"]).drop(columns=later).to_parquet(tmp_path / "old.parquet")
    for name in ("old.csv", "old.parquet"):
        rows = read_manifest(tmp_path / name)
        assert [r.sku for r in rows] == [r.sku for r in sample_rows()]
        assert {(r.mode, r.batch_name, r.task_run_id, r.retryable) for r in rows} == {("", "", "", False)}


def test_a_manifest_written_before_the_quality_gate_still_reads_and_verdicts_round_trip(tmp_path: Path) -> None:
    verdict = Verdict(False, (CheckResult("text_and_labels", False, "garbled label"),), model="judge-1")
    gated = ManifestRow(run_id="r", row_number=3, sku="GATED", variant="main", status="needs_review",
                        key="shop/review/GATED/main-abc.png", verdicts=json.dumps([verdict.to_dict()]), qa_attempts=2,
                        qa_reasons="text_and_labels: garbled label", judge_cost_usd=0.0042, cost_usd=0.41)
    paths = write_local([*sample_rows(), gated], tmp_path)
    for path in paths.values():
        back = read_manifest(path, sku="GATED")[0]
        assert back == gated and Verdict.from_dict(json.loads(back.verdicts)[0]) == verdict
    gate_columns = ["verdicts", "qa_attempts", "qa_reasons", "judge_cost_usd"]
    old = pd.read_csv(paths["csv"], dtype=str, keep_default_na=False).drop(columns=gate_columns)
    old.to_csv(tmp_path / "old.csv", index=False)
    pd.read_parquet(paths["parquet"]).drop(columns=gate_columns).to_parquet(tmp_path / "old.parquet")
    for name in ("old.csv", "old.parquet"):
        rows = read_manifest(tmp_path / name)
        assert {(r.verdicts, r.qa_attempts, r.qa_reasons, r.judge_cost_usd) for r in rows} == {("", None, "", None)}
        assert [r.status for r in rows][-1] == "needs_review"


def test_status_is_validated_and_times_are_utc() -> None:
    with pytest.raises(ValueError, match="status"):
        ManifestRow(run_id="r", row_number=1, sku="s", variant="v", status="done")
    row = ManifestRow(run_id="r", row_number=1, sku="s", variant="v", status="failed",
                      started_at=datetime(2026, 1, 1, 12, 0))
    assert row.started_at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_frame_has_stable_dtypes_even_when_empty() -> None:
    empty, full = manifest_frame([]), manifest_frame(sample_rows())
    assert list(empty.columns) == EXPECTED_COLUMNS and len(empty) == 0
    assert dict(empty.dtypes.astype(str)) == dict(full.dtypes.astype(str))
    assert str(full["bytes"].dtype) == "Int64" and str(full["cost_usd"].dtype) == "Float64"
    assert str(full["sku"].dtype) == "string" and str(full["started_at"].dtype) == "datetime64[us, UTC]"
    assert str(full["retryable"].dtype) == "boolean"
    assert full.loc[2, "key"] == "" and pd.isna(full.loc[2, "bytes"])


def test_local_round_trip(tmp_path: Path) -> None:
    paths = write_local(sample_rows(), tmp_path / "run-1")
    assert paths["csv"].name == "manifest.csv" and paths["parquet"].name == "manifest.parquet"
    for path in paths.values():
        assert read_manifest(path) == sample_rows()
    header = paths["csv"].read_text("utf-8").splitlines()[0]
    assert header == ",".join(EXPECTED_COLUMNS)
    assert not list(tmp_path.glob("run-1/.*.tmp"))


@pytest.mark.e2e  # a real S3 server
def test_s3_round_trip(store: ImageStore) -> None:
    uris = write_manifest(sample_rows(), store, store.key("runs", "run-1"))
    assert uris == {
        "csv": "s3://manifests/shop/runs/run-1/manifest.csv",
        "parquet": "s3://manifests/shop/runs/run-1/manifest.parquet",
    }
    assert read_manifest(uris["csv"]) == sample_rows()
    assert read_manifest(uris["parquet"]) == sample_rows()
    assert store.head("shop/runs/run-1/manifest.csv").content_type.startswith("text/csv")
    frame = pd.read_parquet(io.BytesIO(store.get_bytes("shop/runs/run-1/manifest.parquet")))
    assert list(frame.columns) == EXPECTED_COLUMNS and frame.loc[0, "width"] == 2048


@pytest.mark.e2e  # a real S3 server
def test_find_product_lists_its_rows_newest_run_first(store: ImageStore) -> None:
    from bananaflow.landing.run_history import find_product

    store = ImageStore(store.bucket, prefix="find")  # runs of its own: other tests write under "shop"
    first = sample_rows()
    first[0].task_run_id = "11111111-1111-1111-1111-111111111111"
    again = ManifestRow(run_id="run-2", row_number=2, sku="00123", variant="main", status="skipped_exists",
                        key=first[0].key, task_run_id="22222222-2222-2222-2222-222222222222")
    write_manifest(first, store, store.key("runs", "20261127T020000Z-nightly-a"))
    write_manifest([again], store, store.key("runs", "20261128T020000Z-nightly-b"))

    found = find_product(store, " 00123 ")
    assert [(run, row.status, row.task_run_id) for run, row in found] == [
        ("20261128T020000Z-nightly-b", "skipped_exists", "22222222-2222-2222-2222-222222222222"),
        ("20261127T020000Z-nightly-a", "succeeded", "11111111-1111-1111-1111-111111111111"),
    ]
    assert [run for run, _ in find_product(store, "00123", runs=1)] == ["20261128T020000Z-nightly-b"]
    assert find_product(store, "00999") == []
