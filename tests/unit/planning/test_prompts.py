"""Prompt templates: strict fields, sandboxed rendering, catalog filters."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bananaflow.errors import TemplateError
from bananaflow.planning.prompts import PromptTemplate, join_list, strip_html, truncate_words
from tests.paths import ROOT

EXAMPLES = ROOT / "examples" / "templates"


def test_missing_field_names_row_sku_and_field() -> None:
    template = PromptTemplate.from_string("A {{ color }} {{ title }}", name="product.j2")
    with pytest.raises(TemplateError) as info:
        template.render({"sku": "MUG-01", "title": "Mug"}, row_number=7, sku="MUG-01")
    err = info.value
    assert str(err) == (
        "row 7 (sku MUG-01): template 'product.j2' uses 'color', which this catalog does not have; "
        "add the column or guard it with {% if color %}"
    )
    assert err.row == 7 and err.field == "color"


def test_if_guard_allows_a_missing_column_and_an_empty_value() -> None:
    template = PromptTemplate.from_string("{{ title }}{% if color %} in {{ color }}{% endif %}.")
    assert template.render({"title": "Mug"}) == "Mug."
    assert template.render({"title": "Mug", "color": ""}) == "Mug."
    assert template.render({"title": "Mug", "color": "red"}) == "Mug in red."


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.j2"
    path.write_text("line one\n{% if title %}\n{{ title }\n", "utf-8")
    with pytest.raises(TemplateError, match=r"bad\.j2' line 3"):
        PromptTemplate.from_file(path)
    with pytest.raises(TemplateError, match="does not exist"):
        PromptTemplate.from_file(tmp_path / "nope.j2")


def test_catalog_values_are_data_never_code() -> None:
    template = PromptTemplate.from_string("Photo of {{ title }}")
    evil = "{{ ''.__class__.__mro__ }} {% for x in range(3) %}x{% endfor %} {{ 7*7 }}"
    assert template.render({"title": evil}) == "Photo of " + evil
    with pytest.raises(TemplateError, match="unsafe"):
        PromptTemplate.from_string("{{ title.__class__.__mro__ }}").render({"title": "x"}, row_number=2)


def test_whitespace_collapsed_and_columns_with_odd_names() -> None:
    template = PromptTemplate.from_string("  {{ title }}\n\n\t{{ fields['Body (HTML)'] | strip_html }}  ")
    out = template.render({"title": "Mug", "Body (HTML)": "<p>Big\n\n mug</p>"})
    assert out == "Mug Big mug"


def test_filters() -> None:
    assert strip_html("<p>Soft &amp; warm<br>wool</p><script>alert(1)</script><style>p{}</style>") == "Soft & warm wool"
    assert truncate_words("one two three four", 2) == "one two…"
    assert truncate_words("One. Two three four five six", 4) == "One. Two three four…"
    assert truncate_words("It is soft. It has a distinctly warm tone", 5) == "It is soft."
    assert truncate_words("one two three", 2, end="…") == "one two…"
    assert truncate_words("one two", 5) == "one two"
    assert join_list("red|blue; green,") == "red, blue, green"
    assert join_list(["a", "b", "c"], last=" and ") == "a, b and c"
    assert join_list("") == ""
    rendered = PromptTemplate.from_string("{{ tags | join_list(' / ') }}").render({"tags": "a,b"})
    assert rendered == "a / b"


def test_content_hash_and_default_template() -> None:
    text = "{{ title }}"
    assert PromptTemplate.from_string(text).content_hash == hashlib.sha256(text.encode()).hexdigest()
    default = PromptTemplate.default()
    minimal = default.render({"sku": "1", "title": "Canvas Tote"}, row_number=2, sku="1")
    assert "Canvas Tote" in minimal and "white background" in minimal.lower()
    assert "never invent text" in minimal.lower() and "{" not in minimal
    full = default.render(
        {"title": "Mug", "brand": "Acme", "color": "red", "material": "stoneware", "description": "<b>Big</b> mug"}
    )
    for word in ("Acme", "red", "stoneware", "Big mug."):
        assert word in full
    assert {"title", "brand", "color", "material", "description"} <= default.variables


@pytest.mark.parametrize("name", ["product.j2", "lifestyle.j2"])
def test_example_templates_render_with_only_a_title(name: str) -> None:
    template = PromptTemplate.from_file(EXAMPLES / name)
    assert "Lamp" in template.render({"sku": "L", "title": "Lamp"})


def test_long_html_descriptions_of_a_real_export_reach_the_prompt_cut_at_a_boundary(tmp_path) -> None:
    """The hair store's size-chart HTML: limited after stripping, cut at a sentence or word,
    entities decoded; the product is not rejected."""
    from bananaflow.catalog.loader import load_catalog
    from tests.paths import CATALOG_FIXTURES

    source = CATALOG_FIXTURES / "real" / "shopify_legacy_export_hair_store.csv"
    text = source.read_text("utf-8")
    table = "<table>" + "<tr><td>Length</td><td>14&quot; × 2&quot;</td></tr>" * 400 + "</table>"
    padded = tmp_path / "long.csv"
    padded.write_text(text.replace("<p>", "<p>" + table), "utf-8")
    load = load_catalog(str(padded), max_field_chars=5000)
    assert len(load.accepted) == 4 and load.rejected == []
    template = PromptTemplate.default()
    for row in load.accepted:
        prompt = template.render(row.fields, row_number=row.row_number, sku=row.sku)
        assert "&quot;" not in prompt and "<" not in prompt
    details = PromptTemplate.from_string("{{ description | strip_html | truncate_words(60) | sentence }}")
    cut = [details.render(row.fields) for row in load.accepted]
    assert all(c[-1] in ".!?…" and len(c.split()) <= 60 for c in cut), cut
    assert any('14" × 2"' in c for c in cut)
