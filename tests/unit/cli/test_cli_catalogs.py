"""The ``prompts`` preview and the new ``run`` options, through ``bananaflow.cli.main.main``."""
from __future__ import annotations

from pathlib import Path

import pytest

from bananaflow.cli.arguments import parse_map
from bananaflow.cli.main import EXIT_OK, EXIT_USAGE, main
from bananaflow.errors import BananaflowError
from tests.paths import ROOT

SHOPIFY = str(ROOT / "tests" / "fixtures" / "catalogs" / "shopify_products.csv")
JOB = str(ROOT / "examples" / "jobs" / "shop.yaml")


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The preview must work without any key or endpoint: it calls nothing."""
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "BANANAFLOW_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:9")  # nothing listens: any call would fail


def test_prompts_preview_renders_counts_and_prices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prompts", SHOPIFY, "--job", JOB, "--limit", "2"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "row 2 · enamel-mug · main (gemini-3-pro-image, 1:1, 2K, template main.j2, preset amazon-main, 1 reference photo)" in out
    assert "Speckled enamel steel mug. 350 ml Dishwasher safe." in out  # Body (HTML) stripped
    assert "… and 7 more prompts" in out
    assert "3 products accepted, 2 rows rejected (catalog preset: shopify)" in out
    assert "9 images to generate (main 3, lifestyle 3, banner 3)" in out
    # 2K main + 2K lifestyle at $0.134, 4K banner at $0.24, for 3 products
    assert f"estimated cost at list price: ${3 * (0.134 + 0.134 + 0.24):.2f} (no API was called)" in out


def test_prompts_with_single_template_flags_and_a_mapping(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("Artikel,Name\nA-1,Becher\nA-2,Kanne\n", encoding="utf-8")
    template = tmp_path / "t.j2"
    template.write_text("Photo of {{ title }}")
    code = main(["prompts", str(sheet), "--template", str(template), "--map", "sku=Artikel", "--map", 'title="Name"',
                 "--size", "4K", "--aspect", "16:9"])
    assert code == EXIT_OK
    out = capsys.readouterr().out
    assert "row 3 · A-2 · main (gemini-3-pro-image, 16:9, 4K, template t.j2)\n  Photo of Kanne" in out
    assert "estimated cost at list price: $0.48" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["prompts", SHOPIFY, "--job", "missing.yaml"], "job spec missing.yaml does not exist"),
        (["prompts", SHOPIFY, "--catalog-preset", "magento"], "unknown catalog preset 'magento'"),
        (["prompts", SHOPIFY, "--job", JOB, "--template", JOB], "either a job spec or a template, not both"),
        (["run", SHOPIFY, "--bucket", "b", "--output-preset", "ebay"], "unknown output preset 'ebay'"),
        (["run", SHOPIFY, "--bucket", "b", "--map", "sku"], "is not FIELD=\"Column\""),
    ],
)
def test_user_mistakes_exit_2_with_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_parse_map_reads_field_equals_column() -> None:
    assert parse_map(['sku="Variant SKU"', "title=Title"]) == {"Variant SKU": "sku", "Title": "title"}
    with pytest.raises(BananaflowError, match="uses the column 'X' twice"):
        parse_map(["sku=X", "title=X"])


def test_prompts_preview_counts_only_what_changed_since_a_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bananaflow.catalog.loader import load_catalog
    from bananaflow.landing.manifest import ManifestRow, write_local
    from bananaflow.planning.jobspec import load_job
    from bananaflow.planning.work import plan_job

    items = plan_job(load_catalog(SHOPIFY), load_job(JOB), "bananaflow")
    done = [ManifestRow(run_id="r", row_number=i.row_number, sku=i.sku, variant=i.variant, status="succeeded",
                        key=f"{i.key_stem}.png") for i in items if i.sku != "oak-board"]
    manifest = write_local(done, tmp_path)["csv"]
    assert main(["prompts", SHOPIFY, "--job", JOB, "--limit", "0", "--previous-manifest", str(manifest)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "6 images unchanged since the previous run (skipped, free)" in out
    assert "3 images to generate (main 1, lifestyle 1, banner 1)" in out
    assert "estimated cost at list price: $0.51" in out


def test_find_without_a_bucket_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("BANANAFLOW_BUCKET", raising=False)
    assert main(["find", "MUG-001"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "pass --bucket" in err and "Traceback" not in err


def test_prompts_shows_every_rejection_asked_for_and_counts_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.paths import CATALOG_FIXTURES

    source = CATALOG_FIXTURES / "real" / "google_merchant_style_feed_awin_bilali.csv"
    lines = source.read_text("utf-8").splitlines()
    broken = tmp_path / "feed.csv"  # every row's image link made relative-with-spaces: 20 rejections
    broken.write_text("\n".join([lines[0]] + [line.replace("https://cdn.shopify.com", "my photos") for line in lines[1:]]),
                      "utf-8")
    assert main(["prompts", str(broken), "--limit", "0"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.count("  rejected row") == 10 and "… and 10 more rejected rows (--rejections to show more)" in out
    assert main(["prompts", str(broken), "--limit", "0", "--rejections", "50"]) == EXIT_OK
    assert capsys.readouterr().out.count("  rejected row") == 20
