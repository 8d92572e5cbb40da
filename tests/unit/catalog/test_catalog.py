"""Catalog loading against small real files in tests/fixtures/catalogs."""
from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bananaflow.catalog import CatalogRow, Rejection, load_catalog, rejections_to_csv
from bananaflow.errors import CatalogError
from tests.paths import CATALOG_FIXTURES, ROOT

FIXTURES = CATALOG_FIXTURES
EXAMPLES = ROOT / "examples"


def fx(name: str) -> str:
    return str(FIXTURES / name)


def test_bom_csv_keeps_leading_zeros_and_numbers_rows_like_an_editor() -> None:
    load = load_catalog(fx("bom.csv"))
    assert load.columns == ["sku", "title", "color"]
    assert [r.sku for r in load.accepted] == ["00123", "0042"]
    assert [r.row_number for r in load.accepted] == [2, 3]
    assert load.accepted[0].fields == {"sku": "00123", "title": "Blue Mug", "color": "blue"}
    assert load.accepted[1].fields["color"] == ""
    assert load.rejected == []
    assert load.source == fx("bom.csv")


def test_tsv_by_extension() -> None:
    load = load_catalog(fx("merchant_feed.tsv"), required=("sku", "title", "description"))
    assert [r.sku for r in load.accepted] == ["00007", "TS-2"]
    assert load.accepted[0].fields["description"] == "Heavy canvas, leather handles"
    assert load.accepted[1].fields["description"] == "Soft; washed"


def test_tsv_and_semicolon_by_sniffing(tmp_path: Path) -> None:
    sniffed = tmp_path / "feed.txt"
    sniffed.write_bytes((FIXTURES / "merchant_feed.tsv").read_bytes())
    assert [r.sku for r in load_catalog(str(sniffed)).accepted] == ["00007", "TS-2"]
    europe = load_catalog(fx("semicolon.csv"))
    assert europe.accepted[0].fields == {"sku": "EU-1", "title": "Tasse", "price": "9,90"}


def test_jsonl_numbers_by_line_and_rejects_the_broken_line() -> None:
    load = load_catalog(fx("products.jsonl"))
    assert [(r.row_number, r.sku) for r in load.accepted] == [(1, "00900"), (2, "00901"), (5, "00903")]
    first = load.accepted[0].fields
    assert first["price"] == "149"
    assert first["sizes"] == "[42, 43]"
    assert load.accepted[1].fields["brand"] == "" and load.accepted[1].fields["color"] == ""
    assert set(load.columns) >= {"sku", "title", "color", "price", "sizes", "brand", "material"}
    assert len(load.rejected) == 1
    assert load.rejected[0].row_number == 3 and "not valid JSON" in load.rejected[0].reason


def test_parquet_written_here_keeps_types_as_text(tmp_path: Path) -> None:
    table = pa.table(
        {
            "sku": ["00001", "00002", None],
            "title": ["Mug", "Lamp", "Ghost"],
            "stock": pa.array([5, None, 1], type=pa.int64()),
            "price": [9.9, 12.0, 1.5],
        }
    )
    path = tmp_path / "catalog.parquet"
    pq.write_table(table, path)
    load = load_catalog(str(path))
    assert [(r.row_number, r.sku) for r in load.accepted] == [(2, "00001"), (3, "00002")]
    assert load.accepted[0].fields == {"sku": "00001", "title": "Mug", "stock": "5", "price": "9.9"}
    assert load.accepted[1].fields["stock"] == ""  # not "nan", not 5.0
    assert load.rejected == [Rejection(4, "", "missing sku")]
    # content beats the extension: a Parquet file named .csv is still Parquet
    disguised = tmp_path / "export.csv"
    disguised.write_bytes(path.read_bytes())
    assert len(load_catalog(str(disguised)).accepted) == 2


def test_gzip_csv(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv.gz"
    path.write_bytes(gzip.compress(b"sku,title\n001,Mug\n"))
    assert load_catalog(str(path)).accepted[0].sku == "001"


def test_row_problems_become_rejections_with_reasons() -> None:
    load = load_catalog(fx("problems.csv"), max_field_chars=50)
    # a long description is cut in the prompt, not a rejection (see test_long_html_descriptions)
    assert [(r.row_number, r.sku) for r in load.accepted] == [(2, "A-1"), (6, "C-3"), (7, "D-4")]
    assert load.accepted[2].fields["description"] == 'quoted, with comma and "quotes"'
    reasons = {r.row_number: r for r in load.rejected}
    assert reasons[3].reason == "missing sku"
    assert reasons[4].sku == "A-1" and reasons[4].reason == "duplicate sku 'A-1' (first on row 2)"
    assert reasons[5].reason == "empty title"
    assert 6 not in reasons


def test_broken_rows_are_rejected_and_line_numbers_survive_quoted_newlines() -> None:
    load = load_catalog(fx("broken_rows.csv"))
    assert [(r.row_number, r.sku) for r in load.accepted] == [(2, "OK-1"), (4, "OK-2"), (7, "OK-3")]
    assert load.accepted[1].fields["title"] == "Multi\nline title"
    (bad,) = load.rejected
    assert bad.row_number == 3 and bad.sku == "BAD-1"
    assert "5 fields but the header has 3" in bad.reason


def test_unclosed_quote_is_rejected_not_swallowed_into_a_title() -> None:
    load = load_catalog(fx("unclosed_quote.csv"))
    assert [r.sku for r in load.accepted] == ["U-1"]
    assert load.rejected == [
        Rejection(3, "U-2", "a quote opened on line 3 is never closed, so lines 3-4 could not be read")
    ]


def test_stray_quote_rejects_only_its_line(tmp_path: Path) -> None:
    path = tmp_path / "stray.csv"
    path.write_text('sku,title\nQ-1,"12" ruler"\nQ-2,Fine\n', "utf-8")
    load = load_catalog(str(path))
    assert [r.sku for r in load.accepted] == ["Q-2"]
    assert load.rejected[0].row_number == 2 and load.rejected[0].sku == "Q-1"
    assert "double any quote" in load.rejected[0].reason


def test_utf16_excel_unicode_text(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_bytes("sku\ttitle\n001\tCafé\n".encode("utf-16"))
    assert load_catalog(str(path)).accepted[0].fields == {"sku": "001", "title": "Café"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("missing_columns.csv", "missing_columns.csv has no 'sku' or 'title' columns; found 2 columns: id, name — rename a column or map it"),
        ("empty.csv", "empty.csv is empty; expected a header line"),
        ("blank_lines.csv", "is empty"),
        ("does_not_exist.csv", "does not exist"),
    ],
)
def test_unreadable_catalogs_raise_with_what_was_expected(name: str, expected: str) -> None:
    with pytest.raises(CatalogError) as info:
        load_catalog(fx(name))
    assert expected in str(info.value)


def test_binary_and_wrong_encoding(tmp_path: Path) -> None:
    png = tmp_path / "photo.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    with pytest.raises(CatalogError, match="not a text catalog"):
        load_catalog(str(png))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("sku,title\nX1,Café crème\n".encode("cp1252"))
    with pytest.raises(CatalogError, match="not UTF-8.*line 2.*--encoding cp1252$"):
        load_catalog(str(latin))
    assert load_catalog(str(latin), encoding="cp1252").accepted[0].fields["title"] == "Café crème"


def test_case_hint_and_rename(tmp_path: Path) -> None:
    path = tmp_path / "shopify.csv"
    path.write_text("SKU,Title,Body (HTML)\nS-1,Mug,<p>Nice</p>\n", "utf-8")
    with pytest.raises(CatalogError, match="'SKU' differs only in case"):
        load_catalog(str(path))
    load = load_catalog(str(path), rename={"SKU": "sku", "Title": "title"})
    assert load.columns == ["sku", "title", "Body (HTML)"]
    assert load.accepted[0].fields["Body (HTML)"] == "<p>Nice</p>"


def test_duplicate_header_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("sku,title,color,color\n1,a,b,c\n", "utf-8")
    with pytest.raises(CatalogError, match="'color' twice"):
        load_catalog(str(path))


def test_required_columns_are_configurable(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("sku,title,image_link\n1,Mug,\n", "utf-8")
    load = load_catalog(str(path), required=("sku", "title", "image_link"))
    assert load.rejected == [Rejection(2, "1", "empty image_link")]


def test_rejections_to_csv_round_trips() -> None:
    rejected = [Rejection(3, "A,1", 'duplicate sku "A,1"'), Rejection(9, "", "missing sku")]
    data = rejections_to_csv(rejected)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    assert rows == [["row_number", "sku", "reason"], ["3", "A,1", 'duplicate sku "A,1"'], ["9", "", "missing sku"]]


def test_example_catalog_is_all_valid() -> None:
    load = load_catalog(str(EXAMPLES / "catalog.csv"))
    assert 45 <= len(load.accepted) <= 60 and load.rejected == []
    assert load.columns == ["sku", "title", "description", "brand", "color", "material", "product_type", "price"]
    assert any("," in r.fields["description"] for r in load.accepted)
    assert any('"' in r.fields["description"] for r in load.accepted)
    assert isinstance(load.accepted[0], CatalogRow)
    frame = load.to_frame()
    assert list(frame.columns[:2]) == ["row_number", "sku"] and len(frame) == len(load.accepted)
