"""A per-colour job over colours in any script, and a product with a malformed
``color_variants`` cell: one product's data never stops the plan (issue: ``Grün`` raised
``ValueError ... not safe`` and aborted the run; a bad cell raised ``TypeError``)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bananaflow.catalog.color_variants import color_key_part, parse_color_variants
from bananaflow.landing.keys import key_stem
from bananaflow.options import ImageOptions, RunOptions
from bananaflow.planning.jobspec import Job, build_job
from bananaflow.planning.plan import plan_catalog

SPEC = {"variants": [{"name": "main", "prompt": "One {{ title }} in {{ color }}.", "per_color": True}]}
HEADER = ("Handle,Title,Body (HTML),Vendor,Published,Option1 Name,Option1 Value,Variant SKU,Variant Price,"
          "Image Src,Status\n")


def job() -> Job:
    return build_job(RunOptions(images=ImageOptions(job=SPEC)), model="gemini-3-pro-image")


def test_colours_in_any_script_become_stable_distinct_key_parts(tmp_path: Path) -> None:
    rows = "".join(
        f"jacke,{'Jacke' if i == 0 else ''},,,{'TRUE' if i == 0 else ''},{'Farbe' if i == 0 else ''},{c},J-{i},10,,"
        f"{'active' if i == 0 else ''}\n"
        for i, c in enumerate(["Grün", "Grun", "黒", "Rouge foncé", "Black", "black"])
    )
    (tmp_path / "shop.csv").write_text(HEADER + rows, encoding="utf-8")
    items = plan_catalog(str(tmp_path / "shop.csv"), job(), prefix="p").items
    variants = [i.variant for i in items]
    assert len(variants) == 5 == len(set(variants))  # Black and black are one colour
    assert variants[1] == "main.grun" and variants[4] == "main.black"
    assert variants[0].startswith("main.grun-") and variants[2].startswith("main.color-")
    assert variants[3].startswith("main.rouge-fonce-")
    for it in items:  # every key part is one the store accepts
        key_stem("p", it.sku, it.variant, "0" * 12)
    again = plan_catalog(str(tmp_path / "shop.csv"), job(), prefix="p").items
    assert [i.key_stem for i in again] == [i.key_stem for i in items]


@pytest.mark.parametrize("cell", [
    '{"color": "red"}', "[1, 2]", '[{"skus": ["A"]}]', '[{"color": "red", "skus": "A"}]',
    '[{"color": ["red"]}]', '[{"color": "red", "image": 5}]', "not json", '[{"color": "red", "skus": [null]}]',
])
def test_a_malformed_color_variants_cell_rejects_its_product_alone(tmp_path: Path, cell: str) -> None:
    good = json.dumps([{"color": "Grün", "skus": ["G-1"], "image": ""}, {"color": "Blue", "skus": ["G-2"]}])
    path = tmp_path / "colours.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (
        {"sku": "GOOD", "title": "Good tee", "color_variants": good},
        {"sku": "BAD", "title": "Bad tee", "color_variants": cell},
        {"sku": "PLAIN", "title": "Plain tee", "color": "white"},
    )) + "\n", encoding="utf-8")
    plan = plan_catalog(str(path), job(), prefix="p")
    assert [(i.sku, i.variant.split("-")[0]) for i in plan.items] == [
        ("GOOD", "main.grun"), ("GOOD", "main.blue"), ("PLAIN", "main")]
    [rejection] = plan.catalog.rejected
    assert rejection.sku == "BAD" and rejection.row_number == 2
    assert "color_variants" in rejection.reason and "\n" not in rejection.reason


def test_color_key_part_is_ascii_and_keeps_plain_names() -> None:
    assert color_key_part("Navy Blue") == "navy-blue" and color_key_part("light_gray") == "light_gray"
    assert color_key_part("Grün") != color_key_part("Grun") and color_key_part("Grün").isascii()
    assert color_key_part("x" * 60) != color_key_part("x" * 61) and len(color_key_part("x" * 60)) <= 40
    assert parse_color_variants("") == []
