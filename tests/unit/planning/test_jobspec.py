"""Job specs (YAML and TOML) and planning (product x variant) from them."""
from __future__ import annotations

from pathlib import Path

import pytest

from bananaflow.catalog.loader import load_catalog
from bananaflow.errors import BananaflowError, ConfigurationError
from bananaflow.options import DeliveryOptions, ImageOptions, RunOptions
from bananaflow.planning.jobspec import build_job, load_job
from bananaflow.planning.work import plan_job
from tests.paths import CATALOG_FIXTURES, ROOT

FIXTURES = CATALOG_FIXTURES
EXAMPLE_JOB = ROOT / "examples" / "jobs" / "shop.yaml"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_example_yaml_job_plans_three_variants_with_the_kitchen_override() -> None:
    job = load_job(EXAMPLE_JOB)
    assert [(v.name, v.aspect_ratio, v.image_size, v.preset) for v in job.variants] == [
        ("main", "1:1", "2K", "amazon-main"),
        ("lifestyle", "4:5", "2K", ""),
        ("banner", "16:9", "4K", ""),
    ]
    catalog = load_catalog(str(ROOT / "examples" / "catalog.csv"))
    items = plan_job(catalog, job, "shop")
    assert len(items) == 3 * len(catalog.accepted)
    by = {(i.sku, i.variant): i for i in items}
    mug = by[("MUG-001", "lifestyle")]  # product_type "Home > Kitchen > Mugs"
    assert mug.template == "kitchen_lifestyle.j2" and "kitchen counter" in mug.prompt
    other = next(i for i in items if i.variant == "lifestyle" and i.sku == "BEANIE-RIB-01")
    assert other.template == "lifestyle.j2"
    assert by[("MUG-001", "main")].output_preset == "amazon-main"
    assert by[("MUG-001", "main")].key_stem.startswith("shop/MUG-001/main-")
    assert len({i.key_stem for i in items}) == len(items)


def test_toml_spec_inline_prompts_and_longest_override_wins(tmp_path: Path) -> None:
    spec = write(tmp_path / "job.toml", '''
[defaults]
size = "1K"
[[variants]]
name = "main"
prompt = "{{ title }} on white"
[[overrides]]
match = "apparel"
prompts = { main = "{{ title }} worn by a model" }
[[overrides]]
match = "Apparel > Shirts > T-Shirts"
prompts = { main = "{{ title }} folded flat" }
''')
    job = load_job(spec)
    catalog = load_catalog(str(FIXTURES / "merchant_feed_gmc.tsv"))
    items = plan_job(catalog, job, "p")
    assert [i.prompt for i in items] == ["Organic Cotton Tee Red folded flat", "Organic Cotton Tee Blue folded flat"]


def test_editing_one_template_changes_only_its_variants_keys(tmp_path: Path) -> None:
    (tmp_path / "a.j2").write_text("A {{ title }}")
    (tmp_path / "b.j2").write_text("B {{ title }}")
    spec = write(tmp_path / "job.yaml", "variants:\n  - {name: one, template: a.j2}\n  - {name: two, template: b.j2}\n")
    catalog = load_catalog(str(FIXTURES / "bom.csv"))
    before = {(i.sku, i.variant): i.key_stem for i in plan_job(catalog, load_job(spec), "p")}
    (tmp_path / "b.j2").write_text("B {{ title }}{# reworded #}")
    after = {(i.sku, i.variant): i.key_stem for i in plan_job(catalog, load_job(spec), "p")}
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {(sku, "two") for sku, _ in before}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("variants: []", "variants: List should have at least 1 item"),
        ("variants:\n  - {name: main, aspekt: '1:1'}", "variants[0].aspekt: unknown setting"),
        ("variants:\n  - {name: main, aspect: '7:3'}", "variant 'main': aspect ratio '7:3' is not accepted"),
        ("variants:\n  - {name: main, size: 2k}", "image size '2k' is not accepted by gemini-3-pro-image (the K is uppercase)"),
        ("variants:\n  - {name: 'main shot'}", "variants[0].name: use letters, digits"),
        ("variants:\n  - {name: a}\n  - {name: a}", "variant names must be unique; repeated: a"),
        ("variants:\n  - {name: a, preset: ebay}", "unknown output preset 'ebay'"),
        ("variants:\n  - {name: a, template: missing.j2}", "prompt template"),
        ("variants:\n  - {name: a, prompt: '{{ title'}", "template 'a (inline)' line 1"),
        ("variants:\n  - {name: a}\noverrides:\n  - {match: x, templates: {b: t.j2}}", "not defined: b"),
        ("variants: [", "is not valid YAML (line"),
    ],
)
def test_bad_specs_are_clear_configuration_errors(tmp_path: Path, text: str, message: str) -> None:
    spec = write(tmp_path / "job.yaml", text)
    with pytest.raises(ConfigurationError) as err:
        load_job(spec)
    assert message in err.value.message


def images(**fields: object) -> RunOptions:
    return RunOptions(images=ImageOptions.model_validate(fields))


def test_single_template_flags_are_the_same_job_as_before(tmp_path: Path) -> None:
    catalog = load_catalog(str(FIXTURES / "bom.csv"))
    job = build_job(images(image_size="2K", aspect_ratio="4:5", variant="hero"), model="gemini-3-pro-image")
    assert job.source == "command line" and [v.name for v in job.spec.variants] == ["hero"]
    # the keys the one-variant path (plan_work) gave before it went through the job spec: no image is made again
    assert [i.key_stem for i in plan_job(catalog, job, "p")] == ["p/00123/hero-44b301968a73", "p/0042/hero-f2f6ec0c92c7"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"aspect_ratio": "7:3"}, "aspect ratio '7:3' is not accepted by gemini-3-pro-image; allowed: 1:1"),
        ({"image_size": "2k"}, "image size '2k' is not accepted by gemini-3-pro-image (the K is uppercase)"),
        ({"variant": "main shot"}, "image options: name: use letters, digits"),
        ({"output_preset": "ebay"}, "unknown output preset 'ebay'"),
        ({"template": "missing.j2"}, "prompt template missing.j2 does not exist"),
        ({"template": "t.j2", "job": "shop.yaml"}, "give either a job spec or a template, not both"),
    ],
)
def test_single_template_options_are_checked_as_a_spec_and_named_as_options(fields: dict, message: str) -> None:
    """The flags' one variant goes through the spec's checks; its errors name no spec or variant."""
    with pytest.raises(BananaflowError) as err:  # a template's own error stays a TemplateError
        build_job(images(**fields), model="gemini-3-pro-image")
    assert err.value.message.startswith(message)


def test_run_write_back_options_win_over_the_spec_and_are_checked() -> None:
    spec = {"variants": [{"name": "main", "prompt": "{{ title }}"}], "writeback": {"format": "merchant"}}
    options = RunOptions(images=ImageOptions(job=spec), delivery=DeliveryOptions(writeback="shopify"))
    job = build_job(options, public_base_url="https://cdn.example.com/i/")
    assert (job.spec.writeback.format, job.spec.writeback.public_base_url) == ("shopify", "https://cdn.example.com/i/")
    with pytest.raises(ConfigurationError, match="^write-back options: public_base_url: must be an http"):
        build_job(options, public_base_url="ftp://cdn.example.com/")


def test_references_and_group_leader_are_planned_in_waves(tmp_path: Path) -> None:
    spec = write(tmp_path / "job.yaml", """
variants:
  - {name: main, prompt: "{{ title }}", reference: true}
references: {group_reference: true}
""")
    catalog = load_catalog(str(FIXTURES / "merchant_feed_gmc.tsv"))
    red, blue = plan_job(catalog, load_job(spec), "p")
    assert red.reference_links == ("https://cdn.example.com/tee-red.jpg",) and not red.group_reference_stem
    assert blue.group_reference_stem == red.key_stem


def test_relative_photo_paths_resolve_against_the_catalog_folder() -> None:
    job = build_job(model="gemini-3-pro-image")
    spec_job = load_job(EXAMPLE_JOB)
    catalog = load_catalog(str(FIXTURES / "shopify_products.csv"))
    main = [i for i in plan_job(catalog, spec_job, "p") if i.variant == "main"]
    assert Path(main[0].reference_links[0]) == (FIXTURES.parent / "photos" / "mug.png").resolve()
    assert all(not i.reference_links for i in plan_job(catalog, job, "p"))


def test_a_spec_given_as_data_like_a_prefect_parameter() -> None:
    spec = {"variants": [{"name": "main", "prompt": "{{ title }}", "preset": "jd-main"}]}
    job = build_job(images(job=spec), model="gemini-3-pro-image")
    assert [(v.name, v.preset, v.model) for v in job.variants] == [("main", "jd-main", "gemini-3-pro-image")]
    with pytest.raises(ConfigurationError, match=r"job spec \(parameter\): variants\[0\].size: Input should be a valid string"):
        build_job(images(job={"variants": [{"name": "main", "size": 2}]}))


def test_the_run_section_sets_mode_and_deadline_and_refuses_unknown_modes():
    job = build_job(images(job={"variants": [{"name": "main", "prompt": "{{ title }}"}], "run": {"mode": "auto", "deadline_hours": 36}}))
    assert job.spec.run.mode == "auto" and job.spec.run.deadline_hours == 36
    assert build_job().spec.run.mode == "realtime"
    with pytest.raises(ConfigurationError):
        build_job(images(job={"variants": [{"name": "main", "prompt": "{{ title }}"}], "run": {"mode": "overnight"}}))
