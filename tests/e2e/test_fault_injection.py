"""Every provider fault of a bad day, injected by the simulator over real HTTP, with images
landing in weed mini: each item ends terminal or deferred with the right error class, the
counts add up, the provider saw exactly the attempts the rows report, and nothing hangs."""
from __future__ import annotations

import asyncio
import time

import pytest

from bananaflow import errors
from bananaflow.generation.retry import RetryPolicy
from bananaflow.landing.claims import CLAIM_SUFFIX
from bananaflow.limits.controller import RateController
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer
from tests.e2e.engine_harness import Engine, items, store_for
from tests.flow_params import flow_params

pytestmark = pytest.mark.e2e

POLICY = RetryPolicy(max_attempts=4, initial_wait=0.05, max_wait=0.2, deadline_s=20, no_image_max_attempts=3)
#: No test may take longer than this: a hang fails instead of waiting for pytest's timeout.
HARD_LIMIT_S = 60

# fault -> (error class of an item that always gets it, attempts it is allowed, storm?)
FAULTS = {
    "429": (errors.RateLimited, POLICY.max_attempts, True),
    "503": (errors.Overloaded, POLICY.max_attempts, True),
    "slow": (errors.ProviderTimeout, POLICY.max_attempts, False),
    "truncated_json": (errors.BadResponse, POLICY.no_image_max_attempts, False),
    "html_502": (errors.ServerError, POLICY.max_attempts, False),
    "no_image": (errors.NoImageReturned, POLICY.no_image_max_attempts, False),
    "thought_only": (errors.NoImageReturned, POLICY.no_image_max_attempts, False),
    "wrong_size": (errors.BadResponse, POLICY.no_image_max_attempts, False),
    "bad_base64": (errors.BadResponse, POLICY.no_image_max_attempts, False),
    "reset": (errors.NetworkError, POLICY.max_attempts, False),
}


def leftovers(store, prefix: str) -> list[str]:  # noqa: ANN001
    resp = store.client.list_objects_v2(Bucket=store.bucket, Prefix=prefix)
    return [o["Key"] for o in resp.get("Contents", [])]


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_ends_every_item_in_a_known_state(fault, s3_env, tmp_path):
    expected_class, allowed, storm = FAULTS[fault]
    skus = ["BAD", "FLAKY", "OK-1", "OK-2", "OK-3"]
    script = {"<BAD>": [fault] * 10, "<FLAKY>": [fault, "ok"]}
    if storm:  # a storm: everyone is refused twice before it passes
        script.update({f"<OK-{i}>": [fault, fault, "ok"] for i in (1, 2, 3)})
    config = SimulatorConfig(latency_s=(0.01, 0.05), script=script, script_retry_delay=0.1, slow_seconds=3.0)
    store = store_for(s3_env, "faults")
    prefix = f"f-{fault.replace('_', '-')}"
    with SimulatorServer(config) as sim:
        engine = Engine(sim.base_url, store, tmp_path / "spool", policy=POLICY, timeout_s=1.0)
        t0 = time.monotonic()
        rows = asyncio.run(asyncio.wait_for(engine.arun(items(skus, prefix)), HARD_LIMIT_S))
        elapsed = time.monotonic() - t0
        stats = sim.stats()

    by_sku = {row.sku: row for row in rows}
    assert len(rows) == len(skus)  # counts add up: one row per item, none lost
    bad = by_sku["BAD"]
    if fault == "503" and bad.error_class == "CircuitOpen":
        # a storm of server errors opened the circuit breaker: the item stopped early, failed fast
        assert bad.status == "failed" and 1 <= bad.attempts <= allowed
    else:
        assert (bad.status, bad.error_class) == ("failed", expected_class.__name__)
        assert bad.attempts == allowed
    assert bad.key == "" and bad.error_message
    assert by_sku["FLAKY"].status == "succeeded" and by_sku["FLAKY"].attempts == 2
    for sku in ("OK-1", "OK-2", "OK-3"):
        assert by_sku[sku].status == "succeeded"
        assert by_sku[sku].attempts == (3 if storm else 1)
    # the provider saw exactly the attempts the manifest reports, no more
    assert stats["requests_total"] == sum(row.attempts for row in rows)
    # every success is in S3; no failure left an object, a claim, or a spool file behind
    keys = leftovers(store, prefix + "/")
    assert sorted(keys) == sorted(row.key for row in rows if row.status == "succeeded")
    assert not any(CLAIM_SUFFIX in k for k in keys)
    assert not list((tmp_path / "spool").glob("*.bin"))
    assert elapsed < POLICY.deadline_s


def test_daily_quota_defers_the_rest_without_asking_again(s3_env, tmp_path):
    """After a per-day 429, items are deferred (not failed) and no further request is sent."""
    store = store_for(s3_env, "faults")
    with SimulatorServer(SimulatorConfig(latency_s=(0.01, 0.02), requests_per_day=3)) as sim:
        engine = Engine(sim.base_url, store, tmp_path / "spool", policy=POLICY)
        controller = RateController(1)
        rows = engine.run(items([f"Q-{i}" for i in range(8)], "quota"), controller=controller)
        stats = sim.stats()
    statuses = sorted(row.status for row in rows)
    assert statuses == ["deferred"] * 5 + ["succeeded"] * 3
    assert {row.error_class for row in rows if row.status == "deferred"} == {"QuotaExhausted"}
    assert controller.parked_until() is not None  # the model is parked until midnight Pacific
    # 3 images + the one request that learned the quota was gone
    assert stats["requests_total"] == 4
    assert stats["by_outcome"] == {"ok": 3, "429_day": 1}
    unsent = [row for row in rows if row.status == "deferred" and "not sent" in row.error_message]
    assert len(unsent) == 4


def test_daily_quota_through_the_flow_defers_and_the_summary_says_so(prefect_api, s3_env, provider_env, tmp_path):
    """The same through Prefect: a deferred item is not a success (the CLI exits 1), the
    chunk is not retried for it, and the provider hears one refused request only."""
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images
    from tests.e2e.conftest import products, write_catalog

    sim = provider_env
    sim.configure(requests_per_day=2)
    catalog = write_catalog(tmp_path / "catalog.csv", products(6, "QD"))
    summary = catalog_to_images(**flow_params(catalog=str(catalog), bucket="quota-flow", concurrency=1))
    assert summary["counts"] == {"succeeded": 2, "deferred": 4}
    assert not summary["ok"]
    assert {f["error_class"] for f in summary["failures"]} == {"QuotaExhausted"}
    assert sim.stats()["requests_total"] == 3
