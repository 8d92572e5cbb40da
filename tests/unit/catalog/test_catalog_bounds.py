"""Catalog reading is bounded: bytes read, bytes after decompression (gzip, XLSX members,
Parquet expansion), rows and JSON nesting; each refused with one line (exit 2 from the CLI),
local or over s3://. The bombs are made here, small (limits are lowered for the test)."""
from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bananaflow.catalog import read_limits
from bananaflow.catalog.loader import load_catalog
from bananaflow.errors import CatalogError

MB = 1024 * 1024


@pytest.fixture(autouse=True)
def one_megabyte(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(read_limits.MAX_BYTES_ENV, str(MB))


def header_and(rows: int) -> bytes:
    return b"sku,title\n" + b"".join(f"S{i},Mug {i}\n".encode() for i in range(rows))


def refused(source: Path | str, match: str) -> str:
    with pytest.raises(CatalogError, match=match) as caught:
        load_catalog(str(source))
    assert "\n" not in caught.value.message
    return caught.value.message


def test_a_gzip_bomb_is_refused_while_decompressing(tmp_path: Path) -> None:
    bomb = tmp_path / "catalog.csv.gz"
    bomb.write_bytes(gzip.compress(header_and(10) + b"x" * (3 * MB)))
    assert bomb.stat().st_size < 20_000
    message = refused(bomb, "expands past the catalog limit of 1 MB")
    assert read_limits.MAX_BYTES_ENV in message


def test_devices_and_oversized_files_are_refused_before_reading(tmp_path: Path) -> None:
    refused("/dev/zero", "is not a regular file")
    big = tmp_path / "big.csv"
    big.write_bytes(header_and(10) + b"y" * (2 * MB))
    refused(big, "is larger than the catalog limit")


def test_an_xlsx_whose_members_expand_past_the_limit_is_refused_unopened(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", "<a>" + "0" * (3 * MB) + "</a>")
    path = tmp_path / "catalog.xlsx"
    path.write_bytes(out.getvalue())
    assert path.stat().st_size < 20_000
    refused(path, "expands past")


def test_a_parquet_file_whose_dictionary_expands_past_the_limit_is_refused(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    long_title = "z" * 100_000
    table = pa.table({"sku": [f"S{i}" for i in range(100)], "title": [long_title] * 100})  # 10 MB as text
    path = tmp_path / "catalog.parquet"
    pq.write_table(table, path, use_dictionary=True, compression="zstd")
    assert path.stat().st_size < 50_000
    refused(path, "expands past")
    small = tmp_path / "ok.parquet"
    pq.write_table(pa.table({"sku": ["A", "B"], "title": ["Mug", "Cup"]}), small)
    assert [r.sku for r in load_catalog(str(small)).accepted] == ["A", "B"]


def test_rows_past_the_limit_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(read_limits.MAX_ROWS_ENV, "5")
    path = tmp_path / "c.csv"
    path.write_bytes(header_and(6))
    refused(path, f"has more than 5 rows; split the catalog, or raise {read_limits.MAX_ROWS_ENV}")
    path.write_bytes(header_and(5))
    assert len(load_catalog(str(path)).accepted) == 5


@pytest.mark.parametrize("name", ["deep.jsonl", "deep.json"])
def test_deeply_nested_json_is_one_line_not_a_recursion_error(tmp_path: Path, name: str) -> None:
    deep = '{"sku": "A", "title": "Mug", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = tmp_path / name
    path.write_text(deep if name.endswith("jsonl") else f"[{deep}]")
    refused(path, "nests JSON 65 levels deep; at most 64 are read")
    nested_ok = '{"sku": "A", "title": "Mug", "x": {"a": [1, {"b": "[[[[[[[[[[[[[[[[[["}]}}\n'
    (tmp_path / "ok.jsonl").write_text(nested_ok)
    assert load_catalog(str(tmp_path / "ok.jsonl")).accepted[0].sku == "A"


class _S3:
    def __init__(self, data: bytes, length: int) -> None:
        self.data, self.length = data, length

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, object]:  # noqa: N803 - boto3's names
        return {"Body": io.BytesIO(self.data), "ContentLength": self.length}


def test_the_same_bounds_hold_over_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    from bananaflow.landing import storage

    bomb = gzip.compress(header_and(10) + b"x" * (3 * MB))
    monkeypatch.setattr(storage, "make_s3_client", lambda **_: _S3(bomb, len(bomb)))
    refused("s3://shop/feeds/catalog.csv.gz", "expands past")
    big = header_and(10) + b"y" * (2 * MB)
    monkeypatch.setattr(storage, "make_s3_client", lambda **_: _S3(big, 0))  # a length that lies
    refused("s3://shop/feeds/catalog.csv", "is larger than")


def test_cli_refuses_a_bomb_with_one_line_and_exit_2(tmp_path: Path) -> None:
    bomb = tmp_path / "catalog.csv.gz"
    bomb.write_bytes(gzip.compress(header_and(10) + b"x" * (3 * MB)))
    argv = [sys.executable, "-m", "bananaflow.cli.main", "run", str(bomb), "--bucket", "never-used"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PREFECT_API"))}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2
    output = " ".join((result.stdout + result.stderr).split())
    assert "expands past the catalog limit of 1 MB" in output and "Traceback" not in output


def test_a_json_array_of_empty_objects_is_refused_at_the_row_limit_in_bounded_memory(tmp_path: Path) -> None:
    from tests.memory_bound import run_bounded

    path = tmp_path / "empty.json"
    path.write_bytes(b"[" + b"{}," * 7_999_999 + b"{}]")  # 24 MB, 8 M rows
    code = f"from bananaflow.catalog.loader import load_catalog\nload_catalog({str(path)!r})"
    env = {read_limits.MAX_BYTES_ENV: str(64 * MB)}
    result = run_bounded(code, env=env)
    assert result.error.startswith("CatalogError: empty.json has more than 2000000 rows"), result.error
    assert result.peak_mb < 400, result.peak_mb  # json.loads of the whole array peaked at 1.5 GB
    lines = tmp_path / "empty.jsonl"
    lines.write_bytes(b"{}\n" * 8_000_000)
    result = run_bounded(code.replace("empty.json", "empty.jsonl"), env=env)
    assert result.error.startswith("CatalogError: empty.jsonl has more than 2000000 rows"), result.error
    assert result.peak_mb < 400, result.peak_mb


def test_json_records_are_read_one_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(read_limits.MAX_ROWS_ENV, "3")
    path = tmp_path / "c.json"
    path.write_text('[{"sku": "A", "title": "Mug"}, {"sku": "B", "title": "Cup", "color": "red"}, 7]')
    load = load_catalog(str(path))
    assert [r.sku for r in load.accepted] == ["A", "B"] and load.columns[:3] == ["sku", "title", "color"]
    assert [r.row_number for r in load.rejected] == [3]
    path.write_text('[{"sku": "A", "title": "Mug"}, {}, {}, {}]')
    refused(path, "has more than 3 rows")
    path.write_text('[{"sku": "A", "title": "Mug"} {"sku": "B"}]')
    message = refused(path, "is not valid JSON")
    assert "Mug" not in message  # the position, never the bytes
