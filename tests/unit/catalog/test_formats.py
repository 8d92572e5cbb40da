"""The format registry: every kind sniffing can tell has a parser, an unknown kind is one
line, and the package's public names load from their modules only when used."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import cast, get_args

import pytest

import bananaflow.catalog as catalog
from bananaflow.catalog import loader
from bananaflow.catalog.formats import PARSERS, parser_for
from bananaflow.catalog.sniff import Kind, sniff_kind
from bananaflow.catalog.source import CatalogFile
from bananaflow.errors import CatalogError
from tests.paths import CATALOG_FIXTURES, ROOT

#: A real file of every kind, the kind it is sniffed as, and its first row's (number, sku column, sku).
SAMPLES = [
    ("bom.csv", "csv", (2, "sku", "00123")),
    ("semicolon.csv", "csv", (2, "sku", "EU-1")),
    ("merchant_feed.tsv", "tsv", (2, "sku", "00007")),
    ("products.json", "json", (1, "sku", "J-1")),
    ("products.jsonl", "json", (1, "sku", "00900")),
    ("real/google_merchant_rss_velofant.xml", "xml", (8, "id", "CY-ARK-CHR-57")),
    ("products.parquet", "parquet", (2, "sku", "P-1")),
    ("products.xlsx", "excel", (2, "sku", "00501")),
]


def test_every_kind_sniffing_can_tell_has_a_parser_and_nothing_else_does() -> None:
    assert set(PARSERS) == set(get_args(Kind))
    assert all(parser_for(kind) is PARSERS[kind] for kind in get_args(Kind))


@pytest.mark.parametrize(("name", "kind", "first"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_each_sample_is_sniffed_as_its_kind_and_read_by_that_kinds_parser(
    name: str, kind: str, first: tuple[int, str, str]
) -> None:
    path = CATALOG_FIXTURES / name
    data = path.read_bytes()
    assert sniff_kind(path.name, data) == kind
    columns, rows = parser_for(cast(Kind, kind))(CatalogFile(path.name, data))
    row = next(rows)
    number, column, sku = first
    assert column in columns
    assert (row.row_number, row.values[column], row.problem) == (number, sku, "")


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("catalog.csv", (CATALOG_FIXTURES / "products.parquet").read_bytes(), "parquet"),  # content beats the name
        ("catalog.csv", (CATALOG_FIXTURES / "products.xlsx").read_bytes(), "excel"),
        ("feed.txt", b'\xef\xbb\xbf\n<?xml version="1.0"?><rss/>', "xml"),
        ("export.txt", b'  {"sku": "A"}\n', "json"),
        ("export.txt", b"sku|title\nA|Mug\n", "csv"),
        ("feed.tab", b"sku,title\n", "tsv"),
    ],
)
def test_sniffing_reads_content_before_the_name(name: str, data: bytes, kind: str) -> None:
    assert sniff_kind(name, data) == kind


def test_a_kind_without_a_parser_is_refused_in_one_line() -> None:
    with pytest.raises(CatalogError) as caught:
        parser_for(cast(Kind, "yaml"))
    message = str(caught.value)
    assert "\n" not in message
    assert message == "no parser for a 'yaml' catalog; bananaflow reads csv, tsv, json, xml, parquet, excel"


def test_open_catalog_refuses_a_kind_without_a_parser_before_reading_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "products.csv"
    path.write_text("sku,title\nA,Mug\n")
    monkeypatch.setattr(loader, "sniff_kind", lambda name, data: "yaml")
    with pytest.raises(CatalogError, match="^no parser for a 'yaml' catalog; bananaflow reads csv"):
        loader.open_catalog(str(path))


def test_the_public_names_are_the_objects_their_modules_define() -> None:
    import importlib
    import importlib.util

    homes = catalog._HOMES
    modules = [name for name in catalog.__all__ if name not in homes]
    assert sorted(set(catalog.__all__) - set(modules)) == sorted(homes)
    assert all(importlib.util.find_spec(f"bananaflow.catalog.{module}") for module in modules)
    for name, home in homes.items():
        assert getattr(catalog, name) is getattr(importlib.import_module(f"bananaflow.catalog.{home}"), name)
    with pytest.raises(AttributeError, match="has no attribute 'open_catalgo'"):
        getattr(catalog, "open_catalgo")  # noqa: B009


def test_reading_the_text_helpers_does_not_load_the_loader_or_pandas() -> None:
    """The CLI imports ``catalog.text`` on every command; the loader (pandas, pyarrow) loads
    only when a public name from it is used."""
    probe = ("import sys; import bananaflow.catalog.text; "
             "print(sorted(m for m in ('pandas', 'pyarrow', 'bananaflow.catalog.loader') if m in sys.modules)); "
             "from bananaflow.catalog import open_catalog; print('bananaflow.catalog.loader' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.split("\n")[:2] == ["[]", "True"]


def test_the_json_parser_drops_the_bytes_once_it_has_the_text() -> None:
    """A big JSON export is held as text or as bytes, never both for long."""
    file = CatalogFile("products.jsonl", b'{"sku": "A", "title": "Mug"}\n')
    columns, rows = parser_for("json")(file)
    assert (file.data, columns, [r.values for r in rows]) == (b"", ["sku", "title"], [{"sku": "A", "title": "Mug"}])
