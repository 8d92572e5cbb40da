"""Real Merchant Center XML feeds (RSS 2.0 and Atom with the g: namespace)."""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from bananaflow.catalog.loader import load_catalog
from bananaflow.errors import CatalogError
from tests.paths import CATALOG_FIXTURES

REAL = CATALOG_FIXTURES / "real"
RSS = REAL / "google_merchant_rss_velofant.xml"
ATOM = REAL / "google_merchant_atom_emirates_gifts_MALFORMED.xml"


def test_rss_feed_with_g_namespace_reads_as_a_merchant_feed() -> None:
    load = load_catalog(str(RSS))
    assert load.preset == "merchant" and load.rejected == []
    assert len(load.accepted) == 9
    first = load.accepted[0]
    assert (first.row_number, first.sku) == (8, "CY-ARK-CHR-57")
    assert first.fields["title"] == "A R K I P E L A G O - FRAMEKIT"
    assert first.fields["description"].startswith("Vårt första ramset")
    assert first.fields["category"] == "Cykelramar" and "SE" in first.fields["shipping"]
    assert any(r.fields["image_link"].startswith("https://") for r in load.accepted)
    assert "<?xml" not in " ".join(load.columns)


def test_rss_feed_gzipped_and_in_utf16(tmp_path: Path) -> None:
    packed = tmp_path / "feed.xml.gz"
    packed.write_bytes(gzip.compress(RSS.read_bytes()))
    assert [r.sku for r in load_catalog(str(packed)).accepted] == [r.sku for r in load_catalog(str(RSS)).accepted]
    wide = tmp_path / "feed16.xml"
    wide.write_bytes(RSS.read_text("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"))
    assert load_catalog(str(wide)).accepted[0].fields["description"].startswith("Vårt första ramset")


def test_malformed_atom_feed_is_one_clear_line() -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog(str(ATOM))
    message = caught.value.message
    assert message == (f"{ATOM.name} is not well-formed XML (line 25, column 102: mismatched tag); "
                       "fix the feed or export it again")


def test_atom_feed_once_repaired_reads_with_g_attributes_winning(tmp_path: Path) -> None:
    fixed = tmp_path / "atom.xml"
    fixed.write_text(ATOM.read_text("utf-8").replace("</g:category>", "</g:google_product_category>"), "utf-8")
    load = load_catalog(str(fixed))
    assert load.preset == "merchant"
    # Merchant Center's 50-character id limit, counted on the feed's own line
    assert [(r.row_number, r.reason) for r in load.rejected] == [(15, "id is 52 characters; the limit is 50")]
    watch = load.accepted[0].fields
    assert watch["sku"] == "https://emirates-gifts.arabsad.com/product/watch_1"
    assert watch["title"] == "رولكس يخت ماستر فضي فاخر" and watch["brand"] == "Rolex"
    assert watch["description"] == "ساعة رولكس يخت ماستر فضية فاخرة عالية الجودة"
    assert watch["link"].startswith("https://emirates-gifts.arabsad.com/product-details.html")
    assert watch["google_product_category"] == "Apparel & Accessories > Jewelry > Watches"
    assert watch["category"] == "watches"


def test_entity_declarations_are_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaa">]><rss><channel><item>'
                    "<g:id xmlns:g='http://base.google.com/ns/1.0'>&a;</g:id></item></channel></rss>")
    with pytest.raises(CatalogError, match="declares a DOCTYPE or entities"):
        load_catalog(str(bomb))


LAUGHS = ('<!DOCTYPE rss [<!ENTITY a "' + "a" * 1000 + '">' + "".join(
    f'<!ENTITY {c} "' + f"&{p};" * 10 + '">' for p, c in zip("abcdefg", "bcdefgh", strict=True)) + "]>")


def _feed(head: str, title: str = "&h;") -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>{head}<rss xmlns:g="http://base.google.com/ns/1.0"><channel>'
            f"<item><sku>A</sku><title>{title}</title></item></channel></rss>")


@pytest.mark.parametrize("how", ["padded", "comment-padded", "utf-16", "utf-16-padded", "no-internal-subset"])
def test_a_doctype_is_refused_by_the_parser_whatever_comes_before_it(tmp_path: Path, how: str) -> None:
    padding = {"padded": " " * 70_000, "comment-padded": "<!--" + "x" * 70_000 + "-->", "utf-16-padded": "\n" * 70_000}
    head = padding.get(how, "") + (
        '<!DOCTYPE rss SYSTEM "file:///etc/passwd">' if how == "no-internal-subset" else LAUGHS)
    text = _feed(head)
    path = tmp_path / "feed.xml"
    if how.startswith("utf-16"):
        path.write_bytes(text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"))
    else:
        path.write_text(text, "utf-8")
    with pytest.raises(CatalogError, match=r"declares a DOCTYPE or entities \(line \d+\), which product feeds") as caught:
        load_catalog(str(path))
    assert "aaaa" not in caught.value.message and "passwd" not in caught.value.message


def test_a_real_feed_with_one_bare_ampersand_is_read_with_a_warning_naming_the_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = RSS.read_text("utf-8").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if "<g:title>" in line)
    lines[at] = lines[at].replace("<g:title>", "<g:title>Black & Decker ")
    lines[at + 1] = lines[at + 1].replace("Vårt", "Cerv&eacute;lo &amp; Vårt")  # an HTML entity; an escaped one
    path = tmp_path / "feed.xml"
    path.write_text("".join(lines), "utf-8")
    with caplog.at_level("WARNING", logger="bananaflow.catalog.xml_feed"):
        load = load_catalog(str(path))
    assert len(load.accepted) == 9 and load.rejected == []
    titles = [r.fields["title"] for r in load.accepted]
    assert any(t.startswith("Black & Decker ") for t in titles)
    assert [m for m in caplog.messages if "bare '&'" in m] == [
        f"feed.xml line {n}: a bare '&' or an HTML entity was read as its character; escape '&' as '&amp;' in the feed"
        for n in (at + 1, at + 2)
    ]
    assert any("Cervélo & Vårt" in r.fields.get("description", "") for r in load.accepted)


def test_cdata_and_escaped_ampersands_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_text(_feed("", "<![CDATA[Salt & Pepper &amp; more]]> &amp; &#38; &#x26;"), "utf-8")
    assert load_catalog(str(path)).accepted[0].fields["title"] == "Salt & Pepper &amp; more & & &"


def test_one_huge_field_rejects_its_item_in_bounded_memory(tmp_path: Path) -> None:
    from tests.memory_bound import run_bounded

    words = "ab " * 14_000_000  # 42 MB of short words in one description
    path = tmp_path / "feed.xml"
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0"?><rss xmlns:g="http://base.google.com/ns/1.0"><channel>\n')
        out.write(f"<item><sku>BIG</sku><title>Big</title><description>{words}</description></item>\n")
        out.write("<item><sku>OK</sku><title>Mug</title><description>Blue</description></item>\n")
        out.write("</channel></rss>\n")
    del words
    code = f"""
from bananaflow.catalog.loader import load_catalog
load = load_catalog({str(path)!r})
print("ACCEPTED", [r.sku for r in load.accepted], "REJECTED", [(r.sku, r.reason) for r in load.rejected])
"""
    result = run_bounded(code, env={"BANANAFLOW_CATALOG_MAX_BYTES": str(64 * 2**20)})
    assert result.error == ""
    assert "ACCEPTED ['OK'] REJECTED [('BIG', 'description is longer than 1000000 characters')]" in result.output
    assert result.peak_mb < 400, result.peak_mb  # the same field in XML peaked at 1.23 GB


def test_the_row_limit_applies_to_feeds_while_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANANAFLOW_CATALOG_MAX_ROWS", "3")
    path = tmp_path / "feed.xml"
    items = "".join(f"<item><sku>S{i}</sku><title>T</title></item>" for i in range(4))
    path.write_text(f"<rss><channel>{items}</channel></rss>", "utf-8")
    with pytest.raises(CatalogError, match="has more than 3 rows"):
        load_catalog(str(path))
