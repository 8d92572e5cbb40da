"""Real exports in every encoding and container a shop's tools write (derived at test time
from the real files under tests/fixtures/catalogs/real, see their .source.txt)."""
from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from bananaflow.catalog.encoding import decode_catalog
from bananaflow.catalog.loader import load_catalog
from bananaflow.errors import CatalogError
from tests.paths import CATALOG_FIXTURES

REAL = CATALOG_FIXTURES / "real"
GERMAN = REAL / "cp1252_german_article_list_bosporus.csv"
SPANISH = REAL / "cp1252_spanish_price_list_excel.csv"
GBK = REAL / "chinese_product_list_gbk.csv"
GERMAN_MAP = {"Artikelnummer": "sku", "Artikeltext1": "title"}


def _titles(path: Path, **kwargs: object) -> list[str]:
    return [row.fields["title"] for row in load_catalog(str(path), **kwargs).accepted]


def test_excel_cp1252_export_is_read_as_cp1252_not_as_gb18030() -> None:
    titles = _titles(GERMAN, rename=GERMAN_MAP)
    assert "DPG Pfand Kiste Getränke 24er - 5,10€" in titles
    assert any("Beck´s" in t for t in titles)
    assert not any("\u4e00" <= c <= "\u9fff" for t in titles for c in t)
    assert titles == _titles(GERMAN, rename=GERMAN_MAP, encoding="cp1252")


def test_spanish_excel_report_reads_as_cp1252() -> None:
    text = SPANISH.read_bytes()
    decoded = decode_catalog(text, SPANISH.name, None)
    assert "Página 1/29" in decoded and decoded == text.decode("cp1252")


def test_gbk_list_without_header_is_read_as_chinese() -> None:
    decoded = decode_catalog(GBK.read_bytes(), GBK.name, None)
    assert "金士顿 DT100G3 16G USB3.0" in decoded


def test_utf8_export_saved_again_as_cp1252_by_excel(tmp_path: Path) -> None:
    """Excel on Windows re-saving the hair store's export: accents and curly quotes in cp1252."""
    source = REAL / "shopify_legacy_export_hair_store.csv"
    text = source.read_text("utf-8")
    saved = tmp_path / "hair_cp1252.csv"
    saved.write_bytes(text.encode("cp1252", errors="replace").replace(b"\n", b"\r\n"))
    expected = [r.fields["title"] for r in load_catalog(str(source), include_unpublished=True).accepted]
    assert _titles(saved, include_unpublished=True) == [t.encode("cp1252", "replace").decode("cp1252") for t in expected]


@pytest.mark.parametrize("container", ["bom-crlf", "utf-16", "gzip", "xlsx", "parquet"])
def test_the_same_real_export_in_every_container(tmp_path: Path, container: str) -> None:
    source = REAL / "google_merchant_style_feed_awin_bilali.csv"
    expected = load_catalog(str(source))
    text = source.read_text("utf-8")
    path = tmp_path / f"feed.{container}"
    if container == "bom-crlf":
        path = tmp_path / "feed.csv"
        path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    elif container == "utf-16":
        path = tmp_path / "feed.txt"
        path.write_bytes(pd.read_csv(source, dtype=str, keep_default_na=False).to_csv(sep="\t", index=False).encode("utf-16"))
    elif container == "gzip":
        path = tmp_path / "feed.csv.gz"
        path.write_bytes(gzip.compress(source.read_bytes()))
    elif container == "xlsx":
        path = tmp_path / "feed.xlsx"
        pd.read_csv(source, dtype=str, keep_default_na=False).to_excel(path, index=False)
    else:
        path = tmp_path / "feed.parquet"
        pd.read_csv(source, dtype=str, keep_default_na=False).to_parquet(path, index=False)
    loaded = load_catalog(str(path))
    assert [r.sku for r in loaded.accepted] == [r.sku for r in expected.accepted]
    assert [r.fields["title"] for r in loaded.accepted] == [r.fields["title"] for r in expected.accepted]


def test_a_file_no_detector_can_be_sure_of_is_refused_with_the_flag_to_pass(tmp_path: Path) -> None:
    path = tmp_path / "ru.csv"
    path.write_bytes("sku,title\nX1,Русский чай\n".encode("cp1251"))
    with pytest.raises(CatalogError) as caught:
        load_catalog(str(path))
    assert "\n" not in caught.value.message and "--encoding cp1251" in caught.value.message
    assert _titles(path, encoding="cp1251") == ["Русский чай"]


def test_a_wrong_named_encoding_says_which_flag() -> None:
    with pytest.raises(CatalogError, match="not valid UTF-8 .*--encoding cp1252"):
        load_catalog(str(GERMAN), encoding="utf-8", rename=GERMAN_MAP)


@pytest.mark.parametrize("codec", ["rot13", "base64", "no-such-encoding"])
def test_a_codec_that_is_not_a_text_encoding_is_one_line(codec: str) -> None:
    with pytest.raises(CatalogError, match=f"unknown encoding '{codec}'; pass e.g. --encoding cp1252"):
        load_catalog(str(GERMAN), encoding=codec, rename=GERMAN_MAP)


def test_utf16_without_a_bom_and_cp1252_after_the_first_megabyte(tmp_path: Path) -> None:
    source = REAL / "google_merchant_style_feed_awin_bilali.csv"
    text = source.read_text("utf-8")
    bomless = tmp_path / "feed_utf16le.csv"
    bomless.write_bytes(text.encode("utf-16-le"))
    assert len(load_catalog(str(bomless)).accepted) == len(load_catalog(str(source)).accepted)
    german = GERMAN.read_bytes()
    header, _, body = german.partition(b"\r\n")
    filler = b"".join(b"%d;;Artikel %d;;Pfand;19;0,15;0,15;-1;0;19.05.2026;19.05.2026;;0;1\r\n" % (90000 + i, i)
                      for i in range(30000))
    late = tmp_path / "late_accents.csv"
    late.write_bytes(header + b"\r\n" + filler + body)
    assert len(late.read_bytes()) > 1_100_000
    titles = _titles(late, rename=GERMAN_MAP)
    assert "DPG Pfand Kiste Getränke 24er - 5,10€" in titles


def test_the_titles_the_issue_saw_garbled(tmp_path: Path) -> None:
    """An accented byte followed by an ASCII letter is valid GB18030 ("Herm鑣", "wide爏leeves")."""
    sheet = tmp_path / "excel.csv"
    sheet.write_bytes("sku;title\r\nP1;Hermès Perfume\r\nP2;Dress with wide\xa0sleeves\r\n".encode("cp1252"))
    assert _titles(sheet) == ["Hermès Perfume", "Dress with wide\xa0sleeves"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "cp1252", "gb18030"])
def test_rows_decoded_a_few_bytes_at_a_time_are_the_rows_of_the_whole_text(
    tmp_path: Path, encoding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CSV is decoded as its rows are read, in slices that split multi-byte characters,
    CRLF pairs and the BOM; the rows must be exactly those of the file decoded whole."""
    from bananaflow.catalog import encoding as decoding

    source = GBK if encoding == "gb18030" else REAL / "woocommerce_export_french_locale.csv"
    text = source.read_bytes().decode("gb18030") if source == GBK else source.read_text("utf-8")
    if source == GBK:  # the list has no header line
        text = "sku,qty,title,price\r\n" + text
    saved = tmp_path / "export.csv"
    saved.write_bytes(text.encode(encoding, errors="replace" if encoding == "cp1252" else "strict"))
    whole = load_catalog(str(saved), encoding=encoding)
    monkeypatch.setattr(decoding, "_STEP", 7)
    sliced = load_catalog(str(saved), encoding=encoding)
    assert len(whole.accepted) > 3 and sliced.accepted == whole.accepted and sliced.rejected == whole.rejected
    assert sliced.columns == whole.columns


def test_a_bad_byte_deep_in_a_file_read_in_slices_names_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bananaflow.catalog import encoding as decoding

    monkeypatch.setattr(decoding, "_STEP", 64)
    rows = b"".join(b"SKU-%d,Mug %d\n" % (i, i) for i in range(200))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"sku,title\n" + rows + b"SKU-X,Caf\xe9 mug\n" + rows.replace(b"SKU-", b"B-"))
    with pytest.raises(CatalogError, match=r"not valid UTF-8 \(line 202, byte 10\)"):
        load_catalog(str(bad), encoding="utf-8")
    assert [r.fields["title"] for r in load_catalog(str(bad)).accepted if r.sku == "SKU-X"] == ["Café mug"]
