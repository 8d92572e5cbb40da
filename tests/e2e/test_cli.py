"""`bananaflow run` as a user runs it: a separate process, real servers, exit codes."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import TEST_API_KEY, products, write_catalog

pytestmark = pytest.mark.e2e


def bananaflow(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bananaflow.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def cli_env(prefect_api, s3_env, provider_env, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_API_URL=prefect_api,
        COLUMNS="200",
        GEMINI_API_KEY=TEST_API_KEY,
        GOOGLE_GEMINI_BASE_URL=provider_env.base_url,
        BANANAFLOW_SPOOL_DIR=str(tmp_path / "spool"),
    )
    env.update(s3_env.env())
    return env


def test_run_prints_the_summary_and_exits_0(cli_env, provider_env, tmp_path):
    catalog = write_catalog(tmp_path / "c.csv", products(6, "CLI"))
    result = bananaflow(
        ["run", str(catalog), "--bucket", "cli-ok", "--prefix", "p", "--size", "2K", "--aspect", "16:9",
         "--concurrency", "3", "--no-progress"],
        cli_env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "made 6, failed 0, blocked 0" in out
    assert "s3://cli-ok/p" in out
    assert "manifest.csv" in out and "manifest.parquet" in out
    assert "at list price" in out and "wall time" in out
    assert "/runs/flow-run/" in out
    assert provider_env.stats()["max_in_flight_seen"] <= 3


def test_items_that_fail_make_the_exit_code_1_with_the_summary(cli_env, provider_env, tmp_path):
    provider_env.configure(script={"model FAIL001": ["429_day"]})
    catalog = write_catalog(tmp_path / "c.csv", products(3, "FAIL"))
    result = bananaflow(["run", str(catalog), "--bucket", "cli-fail", "--no-progress"], cli_env)
    assert result.returncode == 1, result.stdout + result.stderr
    # the daily quota parks the model: what was not made yet is deferred, not sent
    assert "FAIL-001" in result.stdout and "QuotaExhausted" in result.stdout
    assert "deferred" in result.stdout and "total" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--aspect", "7:3"], "aspect ratio '7:3' is not accepted by gemini-3-pro-image; allowed: 1:1"),
        (["--size", "2k"], "(the K is uppercase)"),
        (["--model", "gemini-9-imaginary"], "unknown model 'gemini-9-imaginary'"),
    ],
)
def test_bad_settings_are_refused_before_any_call(cli_env, provider_env, tmp_path, extra, expected):
    catalog = write_catalog(tmp_path / "c.csv", products(2, "BAD"))
    result = bananaflow(["run", str(catalog), "--bucket", "cli-bad", *extra], cli_env)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert provider_env.stats()["requests_total"] == 0


def test_a_template_field_the_catalog_lacks_names_row_and_field(cli_env, provider_env, tmp_path):
    catalog = write_catalog(tmp_path / "c.csv", products(2, "TPL"))
    template = tmp_path / "t.j2"
    template.write_text("Studio photo of {{ title }} in {{ finish }}")
    result = bananaflow(["run", str(catalog), "--bucket", "cli-tpl", "--template", str(template)], cli_env)
    assert result.returncode == 2
    assert "row 2" in result.stderr and "finish" in result.stderr and "TPL-000" in result.stderr
    assert "Traceback" not in result.stderr
    assert provider_env.stats()["requests_total"] == 0


def test_a_catalog_that_cannot_be_read_is_one_clear_error(cli_env, tmp_path):
    missing = tmp_path / "nope.csv"
    result = bananaflow(["run", str(missing), "--bucket", "cli-missing"], cli_env)
    assert result.returncode == 2
    assert "nope.csv" in result.stderr
    assert "Traceback" not in result.stderr
