"""The hourly retry: re-runs the catalog only when the last manifest left work undone."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import products, write_catalog
from tests.flow_params import flow_params

pytestmark = pytest.mark.e2e
BUCKET = "ops-retry"


def counts(**by_status: int) -> dict[str, int]:
    """A summary's counts name only the statuses some item ended with."""
    return {status: n for status, n in by_status.items() if n}


def test_retry_finishes_deferred_items_and_pays_only_for_them(ops_stack, tmp_path, monkeypatch):
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images
    from bananaflow_prefect.flows.retry_flow import retry_unfinished

    monkeypatch.setenv("BANANAFLOW_SPOOL_DIR", str(tmp_path / "spool"))
    ops_stack.save_blocks(BUCKET)
    sim = ops_stack.simulator
    # one product hits the daily quota (deferred, not retried within the run), then works later
    sim.configure(script={"model RT003": ["429_day", "ok"]})
    catalog = write_catalog(tmp_path / "catalog.csv", products(6, "RT"))
    blocks = dict(provider_block="bananaflow-provider", store_block="bananaflow-store", limits_block="bananaflow-limits")
    try:
        first = catalog_to_images(**flow_params(catalog=str(catalog), **blocks))
        # the per-day 429 parks the model: RT-003 and whatever was not sent yet are deferred
        deferred = first["counts"]["deferred"]
        # how many were made before the 429 came back is timing: all six may be deferred
        assert first["counts"] == counts(succeeded=6 - deferred, deferred=deferred) and deferred >= 1
        assert "RT-003" in {f["sku"] for f in first["failures"] if f["status"] == "deferred"}

        calls = sim.stats()["requests_total"]
        retried = retry_unfinished(**flow_params(catalog=str(catalog), **blocks))
        assert retried["retried"] == deferred
        assert retried["summary"]["counts"] == counts(succeeded=deferred, skipped_exists=6 - deferred)
        assert sim.stats()["requests_total"] - calls == deferred, "only the deferred items reached the provider"

        # the newest manifest now has nothing undone: the next hour does nothing at all
        calls = sim.stats()["requests_total"]
        idle = retry_unfinished(**flow_params(catalog=str(catalog), **blocks))
        assert idle["retried"] == 0 and idle["summary"] is None
        assert idle["last_run"] and sim.stats()["requests_total"] == calls
    finally:
        sim.configure(script={})
