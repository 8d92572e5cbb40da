"""The hostile-input corpus (tests/fixtures/hostile): every file a merchant could hand us
gets a clear error or per-row rejections, never a traceback, and merchant text can never
become a path, a header or template code."""
from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bananaflow.catalog.loader import load_catalog
from bananaflow.errors import CatalogError, TemplateError
from bananaflow.landing.keys import MAX_SKU_SEGMENT
from bananaflow.landing.storage import decode_metadata, encode_metadata
from bananaflow.options import ImageOptions, RunOptions
from bananaflow.planning.jobspec import build_job
from bananaflow.planning.preflight import check_inputs
from bananaflow.planning.work import plan_job
from tests.paths import FIXTURES

HOSTILE = FIXTURES / "hostile"
SAFE_KEY = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")



def check(catalog: str, template: str | None = None):  # noqa: ANN201
    """What the CLI does before a run: build the job, then read and render everything."""
    return check_inputs(catalog, build_job(RunOptions(images=ImageOptions(template=template))))

def hostile(name: str) -> str:
    return str(HOSTILE / name)


def test_hostile_skus_become_safe_unique_keys_and_titles_stay_text() -> None:
    loaded = load_catalog(hostile("hostile_skus.csv"))
    assert loaded.rejected == [] and len(loaded.accepted) == 18
    items = plan_job(loaded, build_job(model="gemini-3-pro-image"), "shop")
    keys = [item.key_stem for item in items]
    assert len(set(keys)) == len(keys), "SKUs that differ only in removed characters still get their own key"
    for item in items:
        assert SAFE_KEY.match(item.key_stem), item.key_stem
        segments = item.key_stem.split("/")
        assert segments[0] == "shop" and len(segments) == 3  # the SKU is exactly one segment
        assert ".." not in segments and "." not in segments
        assert len(segments[1]) <= MAX_SKU_SEGMENT
    by_sku = {item.sku: item for item in items}
    assert by_sku["x" * 1000].key_stem != by_sku["y" * 1000].key_stem
    # template injection in a field is text in the prompt, never evaluated
    assert "{{ ''.__class__.__mro__[1].__subclasses__() }}" in by_sku["TPL-1"].prompt
    assert "{% for i in range(10**9) %}x{% endfor %}" in by_sku["TPL-2"].prompt
    assert "$(rm -rf /)" in by_sku["TPL-3"].prompt


def test_hostile_sku_metadata_fits_in_headers_and_round_trips() -> None:
    from bananaflow.landing.object_meta import METADATA_SKU_CHARS

    for sku in ["x" * 1000, "日本語のマグ" * 100, "line\nbreak\x1b[31m"]:
        encoded = encode_metadata({"bananaflow-sku": sku[:METADATA_SKU_CHARS], "bananaflow-row": "2"})
        assert all(32 <= ord(c) < 127 for value in encoded.values() for c in value)
        assert decode_metadata(encoded)["bananaflow-sku"] == sku[:METADATA_SKU_CHARS]


def test_bad_rows_are_rejected_one_by_one_with_reasons() -> None:
    loaded = load_catalog(hostile("bad_rows.csv"))
    assert [row.sku for row in loaded.accepted] == ["OK-1"]
    reasons = {r.row_number: r.reason for r in loaded.rejected}
    assert sorted(reasons) == [3, 4, 5, 6, 7]
    assert "5 fields but the header has 3" in reasons[3]
    assert reasons[4] == "missing sku"
    assert "duplicate sku 'OK-1' (first on row 2)" in reasons[5]
    assert "title is 6000 characters" in reasons[6]
    assert "never closed" in reasons[7]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("binary.csv", "is not a text catalog (it contains NUL bytes)"),
        ("no_sku_column.csv", "has no 'sku' column; found 2 columns: id, title"),
        ("only_whitespace.csv", "is empty; expected a header line"),
        ("header_only.csv", "has no products to generate: it has a header but no rows"),
        ("does_not_exist.csv", "does not exist"),
    ],
)
def test_unusable_catalogs_are_one_clear_error(name: str, message: str) -> None:
    with pytest.raises(CatalogError) as caught:
        check(hostile(name))
    assert message in caught.value.message


def test_a_wrong_encoding_reads_when_named() -> None:
    loaded = load_catalog(hostile("latin1.csv"), encoding="cp1252")
    assert loaded.accepted[0].fields["title"] == "Café crème mug"
    # cp1252 is also what detection and the plausibility check agree on
    assert load_catalog(hostile("latin1.csv")).accepted[0].fields["title"] == "Café crème mug"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("bad_template.j2", "uses 'colour_that_does_not_exist', which this catalog does not have"),
        ("attack_template.j2", "access to attribute '__class__' of 'str' object is unsafe"),
        ("broken_syntax.j2", "line 1: unexpected end of template"),
    ],
)
def test_hostile_templates_are_refused_naming_the_problem(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        check(hostile("hostile_skus.csv"), hostile(template))
    assert message in caught.value.message


def test_a_200000_row_catalog_loads_and_validates(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sku", "title", "color"])
        for i in range(200_000):
            sku = f"SKU-{i:06d}"
            if i == 1_000:
                sku = ""  # file line 1,002
            elif i == 150_000:
                sku = "SKU-000007"  # duplicate of line 9
            writer.writerow([sku, f"Mug number {i}", "red"])
    loaded = load_catalog(str(path))
    assert len(loaded.accepted) == 199_998
    assert [(r.row_number, r.reason) for r in loaded.rejected] == [
        (1_002, "missing sku"),
        (150_002, "duplicate sku 'SKU-000007' (first on row 9)"),
    ]
    assert loaded.accepted[-1].row_number == 200_001


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ambiguous_encoding.csv"], "cannot be told for sure; re-save it as UTF-8 or pass --encoding cp1252"),
        (["binary.csv"], "not a text catalog"),
        (["header_only.csv"], "no products to generate"),
        (["missing.csv"], "does not exist"),
        (["hostile_skus.csv", "--template", hostile("bad_template.j2")], "colour_that_does_not_exist"),
    ],
)
def test_cli_exits_2_with_one_line_for_an_unusable_input(args: list[str], message: str) -> None:
    argv = [sys.executable, "-m", "bananaflow.cli.main", "run", hostile(args[0]), *args[1:], "--bucket", "never-used"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PREFECT_API"))}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert message in " ".join(output.split())  # the console wraps long lines
    assert "Traceback" not in output
