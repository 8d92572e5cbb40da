"""Deployments on a work pool, started the ways a shop's data platform starts them: from
another Python process, from a shell, and by a ``catalog.updated`` event. A real
``prefect server start``, a real process worker, deployments/prefect.yaml as users deploy it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bananaflow_prefect.deployments.local_stack import PROJECT_DIR, create_work_pool, deploy_all, start_worker, stop_process
from tests.e2e.conftest import TEST_API_KEY, products, write_catalog
from tests.e2e.ops.conftest import wait_until

pytestmark = pytest.mark.e2e
POOL = "ops-test"
BUCKET = "ops-deploy"


@pytest.fixture(scope="module")
def pool_with_worker(ops_stack, tmp_path_factory):
    """The yaml's triggered and shard deployments on a pool one worker polls."""
    ops_stack.save_blocks(BUCKET)
    create_work_pool(POOL, ops_stack.env)
    deploy_all(ops_stack.env, catalog="unused.csv", pool=POOL, names=["on-catalog-updated", "catalog-shard"])
    logs = tmp_path_factory.mktemp("worker")
    worker = start_worker(POOL, "ops-worker", ops_stack.env, logs / "worker.log", limit=4)
    try:
        yield ops_stack
    finally:
        stop_process(worker)


def _python(script: str, *args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PROJECT_DIR / script), *args], env=env, cwd=PROJECT_DIR, capture_output=True, text=True,
        timeout=timeout,
    )


def _flow_runs(deployment_name: str):  # noqa: ANN202
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment_name])))


def _events(name: str) -> list[dict]:
    import httpx
    from prefect.settings import PREFECT_API_URL

    body = {"filter": {"event": {"name": [name]}, "occurred": {"since": "2000-01-01T00:00:00Z"}}, "limit": 50}
    resp = httpx.post(f"{PREFECT_API_URL.value()}/events/filter", json=body, timeout=30)
    resp.raise_for_status()
    return resp.json()["events"]


def _completed_events(catalog: Path) -> list[dict]:
    """The batch.completed events of runs on ``catalog`` (events are stored asynchronously)."""

    def matching() -> list[dict]:
        return [e for e in _events("bananaflow.batch.completed") if e["payload"]["catalog"] == str(catalog)]

    return wait_until(matching, 30, f"a bananaflow.batch.completed event for {catalog.name}")


def test_yaml_schedules_carry_the_cron_and_time_zone_given_at_deploy(ops_stack):
    """`make up` shows the nightly schedule: deploy with a cron and zone, read them back."""
    from prefect.client.orchestration import get_client

    create_work_pool("ops-schedules", ops_stack.env)  # no worker: nothing scheduled ever runs
    deploy_all(
        ops_stack.env, catalog="s3://feeds/catalog.csv", pool="ops-schedules", cron="30 1 * * *",
        timezone="Europe/Berlin", names=["nightly-refresh", "retry-unfinished"],
    )
    with get_client(sync_client=True) as client:
        nightly = client.read_deployment_by_name("catalog-to-images/nightly-refresh")
        retry = client.read_deployment_by_name("retry-unfinished/retry-unfinished")
    (schedule,) = nightly.schedules
    assert schedule.active and schedule.schedule.cron == "30 1 * * *" and schedule.schedule.timezone == "Europe/Berlin"
    assert nightly.parameters["catalog"] == "s3://feeds/catalog.csv"
    assert nightly.parameters["blocks"]["store"] == "bananaflow-store"
    assert retry.schedules[0].schedule.interval.total_seconds() == 3600
    assert nightly.work_pool_name == "ops-schedules"
    # the scheduler service has put the next nights on the calendar, at 01:30 Berlin time
    upcoming = wait_until(lambda: _flow_runs("nightly-refresh"), 60, "the scheduler to create nightly runs")
    berlin = ZoneInfo("Europe/Berlin")
    assert all(r.expected_start_time.astimezone(berlin).strftime("%H:%M") == "01:30" for r in upcoming)


def test_run_deployment_from_another_python_process(pool_with_worker, tmp_path):
    stack = pool_with_worker
    catalog = write_catalog(tmp_path / "pipeline.csv", products(6, "PIPE"))
    proc = _python("examples/run_from_pipeline.py", str(catalog), "--wait", "--idempotency-key", "upstream-42",
                   env=stack.env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["state"] == "Completed"
    # a retried upstream task with the same key gets the same run, not a second one
    again = _python("examples/run_from_pipeline.py", str(catalog), "--idempotency-key", "upstream-42", env=stack.env)
    assert json.loads(again.stdout.strip().splitlines()[-1])["flow_run_id"] == out["flow_run_id"]

    run = next(r for r in _flow_runs("catalog-shard") if str(r.id) == out["flow_run_id"])
    assert run.parameters["catalog"] == str(catalog)
    done = _completed_events(catalog)
    assert len(done) == 1
    assert done[0]["payload"]["counts"] == {"succeeded": 6} and done[0]["payload"]["ok"] is True
    assert done[0]["payload"]["manifest"]["parquet"].startswith(f"s3://{BUCKET}/bananaflow/runs/")


def test_prefect_deployment_run_from_a_shell(pool_with_worker, tmp_path):
    stack = pool_with_worker
    catalog = write_catalog(tmp_path / "shell.csv", products(3, "SHELL"))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), "deployment", "run", "catalog-to-images/catalog-shard",
         "--param", f"catalog={catalog}", "--watch", "--watch-timeout", "240"],
        env=stack.env, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Completed" in proc.stdout
    run = next(r for r in _flow_runs("catalog-shard") if r.parameters.get("catalog") == str(catalog))
    assert run.state.is_completed()


def test_catalog_updated_event_starts_a_run_on_that_catalog(pool_with_worker, tmp_path):
    stack = pool_with_worker
    catalog = write_catalog(tmp_path / "upstream.csv", products(4, "EVT"))
    proc = _python("examples/emit_catalog_updated.py", str(catalog), "--shop", "acme", env=stack.env)
    assert proc.returncode == 0, proc.stderr[-2000:]

    def triggered():
        return [r for r in _flow_runs("on-catalog-updated") if r.parameters.get("catalog") == str(catalog)]

    (run,) = wait_until(triggered, 90, "the catalog.updated trigger to create a flow run")
    assert run.parameters["blocks"]["store"] == "bananaflow-store"
    finished = wait_until(lambda: [r for r in triggered() if r.state.is_final()], 240, "the triggered run to finish")
    assert finished[0].state.is_completed(), finished[0].state
    done = _completed_events(catalog)
    assert [e["payload"]["counts"] for e in done] == [{"succeeded": 4}]
    # no secret reached the event stream
    assert TEST_API_KEY not in json.dumps(done)


def _flow_run_logs(flow_run_id) -> list[str]:  # noqa: ANN001
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        return [log.message for log in client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))]


def test_catalog_updated_events_naming_secrets_are_refused_and_quote_nothing(pool_with_worker, tmp_path):
    """An event naming a file outside the allowed roots is refused without opening it; a
    non-catalog file inside them is refused without quoting it; an unlisted bucket is refused.
    Read back from Prefect's API: no byte of either file is in the state message or the logs."""
    import shutil
    import tempfile

    stack = pool_with_worker
    secret = "S3cr3t-pgpass-hunter2"
    outside_home = Path(tempfile.mkdtemp(prefix="bf-home-"))  # not under BANANAFLOW_CATALOG_ROOTS
    try:
        pgpass = outside_home / ".pgpass"
        pgpass.write_text(f"db.internal:5432:shop:admin:{secret}\n")
        inside = tmp_path / ".env"  # under the allowed roots, but no catalog
        inside.write_text(f"DATABASE_PASSWORD={secret}\n")
        locations = [str(pgpass), str(inside), "s3://finance-reports/../payroll/2026.csv"]
        for location in locations:
            proc = _python("examples/emit_catalog_updated.py", location, "--shop", "hostile", env=stack.env)
            assert proc.returncode == 0, proc.stderr[-2000:]

        def finished():
            runs = [r for r in _flow_runs("on-catalog-updated") if r.parameters.get("catalog") in locations]
            return runs if len(runs) == len(locations) and all(r.state.is_final() for r in runs) else []

        runs = {r.parameters["catalog"]: r for r in wait_until(finished, 240, "the three triggered runs to finish")}
        for location, run in runs.items():
            assert run.state.is_failed(), (location, run.state)
            text = " ".join([run.state.message or "", *_flow_run_logs(run.id)])
            assert secret not in text and "db.internal" not in text and "DATABASE_PASSWORD" not in text
        assert "is outside the locations this deployment may read" in runs[str(pgpass)].state.message
        assert "is outside the locations" in runs["s3://finance-reports/../payroll/2026.csv"].state.message
        assert "CatalogError: .env " in runs[str(inside)].state.message  # read, refused, and not quoted
    finally:
        shutil.rmtree(outside_home, ignore_errors=True)
