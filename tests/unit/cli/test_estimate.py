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
