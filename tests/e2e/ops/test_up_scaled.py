"""`make up-scaled` as a new user runs it: `bananaflow up --scaled` brings up a Prefect server
on PostgreSQL with Redis messaging, two workers, the blocks and the deployments (with the
bundled simulator and S3 server, as no provider key is set); the `scale-out` deployment then
runs the example catalog on the pool, `bananaflow find` locates one product through the
saved store block, and `bananaflow down` stops all of it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.ops.conftest import PROVIDER_VARS, free_port, wait_until

pytestmark = pytest.mark.e2e
PROJECT = Path(__file__).resolve().parents[3]
DEPLOYMENTS = {"nightly-refresh", "retry-unfinished", "on-catalog-updated", "catalog-shard", "scale-out"}


def _bananaflow(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bananaflow.cli.main", *args], cwd=PROJECT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_scaled_runs_the_example_catalog_across_two_workers_then_down_stops_it(scaled_services, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port, state = free_port(), tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARS}
    env.update(scaled_services.meters_env, BANANAFLOW_PREFECT_DATABASE_URL=scaled_services.database_url,
               BANANAFLOW_PREFECT_REDIS_URL=scaled_services.prefect_redis_url, BANANAFLOW_SPOOL_DIR=str(tmp_path / "spool"))
    up = _bananaflow(["up", "--scaled", "--port", str(port), "--state-dir", str(state), "--wait", "400"], env, 450)
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        assert f"Prefect UI http://127.0.0.1:{port}" in up.stdout and "2 worker(s)" in up.stdout
        assert "PostgreSQL + Redis" in up.stdout
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            with get_client(sync_client=True) as client:
                assert DEPLOYMENTS <= {d.name for d in client.read_deployments()}
                wait_until(
                    lambda: sum(w.status == "ONLINE" for w in client.read_workers_for_work_pool("bananaflow")) == 2,
                    120, "two online workers on the bananaflow pool",
                )
            run = run_deployment(
                "catalog-sharded/scale-out", parameters={"catalog": str(PROJECT / "examples" / "catalog.csv")},
                timeout=400,
            )
            assert run.state.is_completed(), run.state
            with get_client(sync_client=True) as client:
                shards = [r for r in client.read_flow_runs() if "bananaflow-shard" in r.tags]
            assert len(shards) == 2 and all(r.state.is_completed() for r in shards)

        # a person looks for one product: the store block `up` saved knows the endpoint and keys
        found = _bananaflow(["find", "MUG-001", "--store-block", "bananaflow-store"], {**env, "PREFECT_API_URL": api_url}, 120)
        assert found.returncode == 0, found.stdout + found.stderr
        assert " MUG-001  row 2  main  succeeded  s3://bananaflow-local/" in found.stdout
        assert f"task run http://127.0.0.1:{port}/runs/task-run/" in found.stdout
        # the scale-out run and its two shards
        assert scaled_services.count("SELECT count(*) FROM flow_run WHERE state_type = 'COMPLETED'") == 3
        stack_pid = int((state / "stack.pid").read_text())
    finally:
        down = _bananaflow(["down", "--state-dir", str(state)], env, 120)
    assert down.returncode == 0 and "stopped the workers" in down.stdout, down.stdout + down.stderr
    assert not _alive(stack_pid)
    wait_until(lambda: not _is_healthy(api_url), 60, "the Prefect server to stop")


def _is_healthy(api_url: str) -> bool:
    from bananaflow.devstack.local_prefect import is_healthy

    return is_healthy(api_url)
