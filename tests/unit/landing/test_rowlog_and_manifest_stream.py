"""Rows kept on disk during a run, and the manifest written from them batch by batch."""
import threading
from datetime import UTC, datetime
from pathlib import Path

from bananaflow.landing.manifest import ManifestRow, read_manifest, write_local
from bananaflow.landing.manifest_stream import upload_manifest, write_manifest_files
from bananaflow.landing.rowlog import RowLog


class PutStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        self.objects[key] = path.read_bytes()

    def uri(self, key: str) -> str:
        return f"s3://b/{key}"


def row(i: int, status: str = "succeeded") -> ManifestRow:
    return ManifestRow(run_id="r1", row_number=i, sku=f"SKU-{i}", variant="main", status=status,
                       key=f"p/SKU-{i}/main.png" if status == "succeeded" else "", latency_s=0.5 + i / 100,
                       attempts=1, cost_usd=0.045, started_at=datetime(2026, 11, 29, 12, 0, tzinfo=UTC),
                       error_message="=cmd|' /C calc'!A0" if status == "failed" else "")


def test_rows_added_from_many_threads_come_back_whole_in_batches():
    log = RowLog()
    threads = [threading.Thread(target=log.add, args=([row(t * 100 + i) for i in range(100)],)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(log) == 800
    back = [r for batch in log.batches(64) for r in batch]
    assert sorted(r.row_number for r in back) == list(range(800))
    assert list(log) == back  # may be read again
    log.close()


def test_the_streamed_manifest_reads_back_like_the_one_written_at_once(tmp_path):
    rows = [row(i, "failed" if i % 7 == 0 else "succeeded") for i in range(23)]
    batches = [rows[i : i + 5] for i in range(0, len(rows), 5)]
    streamed = write_manifest_files(batches, tmp_path / "streamed")
    whole = write_local(rows, tmp_path / "whole")
    assert streamed["csv"].read_bytes() == whole["csv"].read_bytes()
    assert read_manifest(streamed["parquet"]) == read_manifest(whole["parquet"]) == read_manifest(streamed["csv"])
    store = PutStore()
    assert upload_manifest(streamed, store, "runs/x") == {"csv": "s3://b/runs/x/manifest.csv",
                                                          "parquet": "s3://b/runs/x/manifest.parquet"}
    assert store.objects["runs/x/manifest.csv"] == whole["csv"].read_bytes()


def test_an_empty_run_still_gets_both_manifest_files(tmp_path):
    paths = write_manifest_files([], tmp_path)
    assert read_manifest(paths["csv"]) == [] == read_manifest(paths["parquet"])
    assert not list(tmp_path.glob(".*.tmp"))
