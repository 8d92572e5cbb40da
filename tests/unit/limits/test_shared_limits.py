"""Across workers: two worker processes against one simulator share their limits through a
real Redis server, and the simulator's own counters show the limits were never exceeded."""
import json
import subprocess
import sys
import uuid

import pytest  # noqa: E402

from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer
from tests.paths import ROOT
from tests.unit.limits.test_meters import REDIS_URL, _redis_or_skip

pytestmark = pytest.mark.e2e  # worker processes and Redis

WORKER = ROOT / "bench" / "engine_worker.py"
RPM, CAP, PER_WORKER = 20, 4, 20


def run_two_workers(sim: SimulatorServer, redis_url: str | None) -> list[dict]:
    namespace = f"bftest-{uuid.uuid4().hex[:8]}"
    procs = []
    try:
        for n in range(2):
            cmd = [sys.executable, str(WORKER), "--base-url", sim.base_url, "--count", str(PER_WORKER),
                   "--first", str(n * 1000), "--max-in-flight", str(CAP), "--rpm", str(RPM), "--burst", str(RPM),
                   "--retry-initial", "0.2", "--stop-after", "6", "--namespace", namespace]
            if redis_url:
                cmd += ["--redis-url", redis_url]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]


def test_two_workers_sharing_redis_never_exceed_the_simulators_limits():
    _redis_or_skip()
    config = SimulatorConfig(latency_s=(0.1, 0.2), requests_per_minute=RPM, max_in_flight=CAP)
    with SimulatorServer(config) as sim:
        results = run_two_workers(sim, REDIS_URL)
        stats = sim.stats()
    assert stats["max_in_flight_seen"] <= CAP
    assert stats["max_requests_in_any_60s_window"] <= RPM
    assert "429" not in stats["by_outcome"], stats["by_outcome"]
    # the shared minute was used to the limit, split between the two workers
    assert stats["requests_total"] == RPM
    assert sum(r["completed"] for r in results) == RPM
    assert all(r["completed"] > 0 for r in results)


def test_without_a_shared_backend_the_same_two_workers_overrun_the_limit():
    """The control: each worker alone respects its limits, together they do not — which is
    what the shared backend is for, and shows the simulator would catch an overrun."""
    config = SimulatorConfig(latency_s=(0.1, 0.2), requests_per_minute=RPM, max_in_flight=CAP)
    with SimulatorServer(config) as sim:
        run_two_workers(sim, None)
        stats = sim.stats()
    assert stats["by_outcome"].get("429", 0) > 0
