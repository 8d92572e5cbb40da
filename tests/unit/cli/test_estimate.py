import pytest

from bananaflow.cli.main import main
from bananaflow.planning.estimate import estimate


def test_estimate_is_bound_by_the_tightest_limit_and_counts_quota_days():
    e = estimate(1000, model="gemini-3-pro-image", image_size="1K", max_in_flight=20,
                 requests_per_minute=20, requests_per_day=250, latency_s=15)
    assert e.cost_standard_usd == pytest.approx(134.0)
    assert e.cost_batch_usd == pytest.approx(67.0)
    assert e.images_per_min == 20 and "requests/min" in e.bound_by
    assert e.minutes == pytest.approx(50.0)
    assert e.days == 4


def test_in_flight_over_latency_binds_when_no_rate_is_given():
    e = estimate(80, model="gemini-3-pro-image", image_size="4K", max_in_flight=8, latency_s=20)
    assert e.images_per_min == pytest.approx(24.0) and "in-flight" in e.bound_by
    assert e.cost_standard_usd == pytest.approx(80 * 0.24)


def test_spend_cap_binds_at_tier_1():
    e = estimate(100, model="gemini-3-pro-image", image_size="1K", max_in_flight=50, spend_per_10min_usd=10, latency_s=10)
    assert e.images_per_min == pytest.approx(10 / 0.134 / 10) and "spend cap" in e.bound_by


def test_cli_estimate_prints_images_cost_and_time(capsys, tmp_path):
    catalog = tmp_path / "c.csv"
    catalog.write_text("sku,title\n" + "".join(f"S{i},Mug {i}\n" for i in range(30)) + ",no sku\n")
    assert main(["estimate", str(catalog), "--rpm", "10", "--rpd", "12"]) == 0
    out = capsys.readouterr().out
    assert "images:        30" in out
    assert "$4.02 standard, $2.01 batch" in out
    assert "3 day(s)" in out
    assert "1 catalog rows would be skipped" in out


def test_cli_estimate_refuses_a_bad_size_clearly(capsys, tmp_path):
    catalog = tmp_path / "c.csv"
    catalog.write_text("sku,title\nS1,Mug\n")
    assert main(["estimate", str(catalog), "--size", "8K"]) == 2
    assert "image size '8K' is not accepted" in capsys.readouterr().err.replace("\n", "")


def test_estimate_shows_batch_mode_cost_and_time():
    est = estimate(1000, model="gemini-3-pro-image", image_size="2K", max_in_flight=8, requests_per_minute=20)
    assert est.cost_batch_usd == pytest.approx(67.0)
    assert est.batches == 8  # 125 2K images fill the 1 GB results cap of one batch
    assert any("8 batch(es), results within 24 h at $67.00" in line for line in est.lines())


def test_estimate_prices_a_multi_variant_job_on_a_real_export_as_prompts_and_the_preflight_plan_it(capsys):
    """One planner: ``estimate``, ``prompts`` and the preflight check see the same 3 images per product."""
    from bananaflow.options import CatalogOptions
    from bananaflow.planning.jobspec import load_job
    from bananaflow.planning.plan import plan_catalog
    from bananaflow.planning.preflight import check_inputs
    from tests.paths import CATALOG_FIXTURES, EXAMPLES

    hair = str(CATALOG_FIXTURES / "real" / "shopify_legacy_export_hair_store.csv")
    job_path = str(EXAMPLES / "jobs" / "shop.yaml")
    assert main(["estimate", hair, "--job", job_path]) == 0
    out = capsys.readouterr().out
    assert "images:        12 " in out and "main 4, lifestyle 4, banner 4" in out
    assert "skipped:       3 drafts" in out
    assert main(["prompts", hair, "--job", job_path, "--limit", "0"]) == 0
    prompts_out = capsys.readouterr().out
    assert "12 images to generate (main 4, lifestyle 4, banner 4)" in prompts_out
    cost = out.split("cost:          $", 1)[1].split(" ", 1)[0]
    assert f"estimated cost at list price: ${cost}" in prompts_out
    job = load_job(job_path)
    assert check_inputs(hair, job).products == 4
    everything = plan_catalog(hair, job, CatalogOptions(include_unpublished=True))
    assert len(everything.items) == 21
    assert main(["estimate", hair, "--job", job_path, "--include-unpublished"]) == 0
    assert "images:        21 " in capsys.readouterr().out


def test_estimate_takes_every_catalog_option(capsys):
    from tests.paths import CATALOG_FIXTURES

    german = str(CATALOG_FIXTURES / "real" / "cp1252_german_article_list_bosporus.csv")
    argv = ["estimate", german, "--encoding", "cp1252", "--catalog-preset", "none",
            "--map", "sku=Artikelnummer", "--map", "title=Artikeltext1"]
    assert main(argv) == 0
    assert "images:        24 " in capsys.readouterr().out


def test_estimate_and_prompts_stream_the_catalog_as_the_run_does(capsys, tmp_path, monkeypatch):
    """Neither reads the catalog whole (a 1,000,000-row file peaked at 2.2 GB that way): they
    price and count items as the run's streaming planner makes them (memory: bench/estimate_memory.py)."""
    import bananaflow.planning.plan as plan

    def whole(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the catalog was read whole")

    monkeypatch.setattr(plan, "load_catalog", whole)
    catalog = tmp_path / "c.csv"
    catalog.write_text("sku,title\n" + "".join(f"S-{i},Mug {i}\n" for i in range(30)) + "S-1,again\n")
    assert main(["estimate", str(catalog)]) == 0
    out = capsys.readouterr().out
    assert "30" in out and "rejected:      1 catalog rows" in out
    assert main(["prompts", str(catalog), "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "… and 28 more prompts" in out and "30 products accepted, 1 rows rejected" in out
    assert "30 images to generate (main 30)" in out
