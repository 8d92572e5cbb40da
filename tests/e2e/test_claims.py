"""Two runs of the same job at once, and claims left behind by dead runs, on weed mini's
real conditional writes (If-None-Match: * answered 412)."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from bananaflow.landing.claims import Claim, KeyClaims, claim_key
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer
from tests.e2e.engine_harness import Engine, items, store_for

pytestmark = pytest.mark.e2e


def test_two_runs_started_at_once_generate_each_image_once(s3_env, tmp_path):
    store = store_for(s3_env, "claims")
    work = items([f"TWIN-{i:02d}" for i in range(16)], "twins")
    with SimulatorServer(SimulatorConfig(latency_s=(0.05, 0.15))) as sim:
        engine = Engine(sim.base_url, store, tmp_path / "spool", concurrency=4)

        async def both():
            return await asyncio.gather(engine.arun(work, "run-A"), engine.arun(list(reversed(work)), "run-B"))

        rows_a, rows_b = asyncio.run(both())
        stats = sim.stats()
    assert stats["requests_total"] == len(work)  # not one image paid twice
    made = [r for r in rows_a + rows_b if r.status == "succeeded"]
    seen = [r for r in rows_a + rows_b if r.status == "skipped_exists"]
    assert len(made) == len(work) and len(seen) == len(work)
    assert {r.sku for r in made} == {item.sku for item in work}
    assert len(rows_a) == len(rows_b) == len(work)
    assert all(store.find_existing(item.key_stem) for item in work)
    assert not any(store.exists(claim_key(item.key_stem)) for item in work)


def test_claims_of_dead_or_expired_runs_are_taken_over(s3_env, tmp_path):
    store = store_for(s3_env, "claims")
    work = items(["LEGACY-EXPIRED", "EXPIRED", "GARBAGE"], "stale")
    now = time.time()
    stale = {  # a claim written by an older bananaflow (host and pid), its lease over
        "LEGACY-EXPIRED": json.dumps({"run_id": "crashed", "host": "h", "pid": 1, "expires_at": now - 1}).encode(),
        "EXPIRED": Claim("old-run", "other-owner", now - 1).to_bytes(),
        "GARBAGE": b"{half a claim",
    }
    for item in work:
        store.put_bytes(claim_key(item.key_stem), stale[item.sku], "application/json")
    with SimulatorServer(SimulatorConfig()) as sim:
        rows = Engine(sim.base_url, store, tmp_path / "spool").run(work, "rescue-run")
        assert sim.stats()["requests_total"] == 3
    assert [r.status for r in rows] == ["succeeded"] * 3


def test_a_live_claim_of_another_run_defers_the_item_unpaid(s3_env, tmp_path):
    store = store_for(s3_env, "claims")
    (item,) = items(["BUSY"], "busy")
    live = Claim("other-run", "other-owner", time.time() + 3600)
    store.put_bytes(claim_key(item.key_stem), live.to_bytes(), "application/json")
    with SimulatorServer(SimulatorConfig()) as sim:
        engine = Engine(sim.base_url, store, tmp_path / "spool", claim_lease_s=0.5)
        (row,) = engine.run([item], "impatient-run")
        assert sim.stats()["requests_total"] == 0
    assert (row.status, row.error_class) == ("deferred", "ClaimHeld")
    assert "another run" in row.error_message
    assert store.exists(claim_key(item.key_stem)), "someone else's live claim is left alone"


def test_a_waiting_run_reports_the_image_the_claimant_made(s3_env, tmp_path):
    """The second run waits on the claim and then finds the image, paying nothing."""
    store = store_for(s3_env, "claims")
    (item,) = items(["SLOWPOKE"], "waiter")
    with SimulatorServer(SimulatorConfig(latency_s=(1.0, 1.0))) as sim:
        engine = Engine(sim.base_url, store, tmp_path / "spool")

        async def staggered():
            first = asyncio.create_task(engine.arun([item], "first"))
            await asyncio.sleep(0.3)
            second = await engine.arun([item], "second")
            return await first, second

        (first,), (second,) = asyncio.run(staggered())
        assert sim.stats()["requests_total"] == 1
    assert first.status == "succeeded" and second.status == "skipped_exists"
    assert second.key == first.key


def test_of_many_runs_taking_over_one_dead_claim_at_once_exactly_one_wins(s3_env):
    import threading

    store = store_for(s3_env, "claims")
    (item,) = items(["CONTESTED"], "race")
    dead = Claim("crashed-run", "other-owner", time.time() - 1)
    store.put_bytes(claim_key(item.key_stem), dead.to_bytes(), "application/json")
    contenders = [KeyClaims(store, f"run-{i}", lease_s=60) for i in range(8)]
    start = threading.Barrier(len(contenders))
    won: list[str] = []

    def contend(claims: KeyClaims) -> None:
        start.wait()
        if claims.try_claim(item.key_stem):
            won.append(claims.run_id)

    threads = [threading.Thread(target=contend, args=(c,)) for c in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(won) == 1, won
    winner = next(c for c in contenders if c.run_id == won[0])
    winner.release(item.key_stem)
    assert store.list_keys(item.key_stem) == [], "release removes every generation"
