"""``make up`` / ``make up-scaled``: a Prefect server, a process work pool, workers and the
deployments of deployments/prefect.yaml on this machine, kept by one supervisor process.

``bananaflow up`` starts ``python -m bananaflow_prefect.deployments.local_stack`` in the
background and waits until it reports ready; ``bananaflow down`` sends it SIGTERM, which stops
the workers (and the local simulator and S3 server when it started them), then stops the
Prefect server.

Without a provider key in the environment the stack runs against the bundled simulator and
a local SeaweedFS, exactly like ``make demo``, so a new user can press "Run" in the UI and
watch a real run. With ``GEMINI_API_KEY`` (or ``OPENAI_API_KEY``) and AWS_* set, the
blocks point at the real provider and bucket instead.

``--scaled``: the server uses PostgreSQL and Redis messaging (settings below), and two
workers poll the pool, which is what ``catalog-sharded`` fans out onto; the runs on both
workers keep their rate meters in Redis (``BANANAFLOW_REDIS_URL``), so the limits hold
for the two together.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from bananaflow.catalog.locations import allowing
from bananaflow.devstack.processes import stop_process  # also the tests' way to stop a worker

PROJECT_DIR = Path(__file__).resolve().parent.parent
PREFECT_FILE = PROJECT_DIR / "deployments" / "prefect.yaml"
DEFAULT_POOL = "bananaflow"
#: Defaults for --scaled; override with BANANAFLOW_PREFECT_DATABASE_URL / BANANAFLOW_PREFECT_REDIS_URL
#: (the server's messaging) and BANANAFLOW_REDIS_URL (the meters the workers' runs share).
DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bananaflow_prefect"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/5"
DEFAULT_LIMITS_REDIS_URL = "redis://127.0.0.1:6379/6"
LOCAL_BUCKET = "bananaflow-local"


def scaled_server_env(database_url: str, redis_url: str) -> dict[str, str]:
    """A Prefect server on PostgreSQL with Redis messaging, cache and lease storage: the
    in-memory broker drops events past a few thousand task runs per burst; this doesn't."""
    return {
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": database_url,
        "PREFECT_SERVER_EVENTS_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_URL": redis_url,
    }


def ensure_database(database_url: str) -> None:
    """Create the server's PostgreSQL database if it does not exist yet (trust or password auth)."""
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(database_url)

    async def create() -> None:
        conn = await asyncpg.connect(
            host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username or "postgres",
            password=url.password, database="postgres",
        )
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", url.database)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{url.database}"')
        finally:
            await conn.close()

    asyncio.run(create())


def prefect_cli(args: Sequence[str], env: Mapping[str, str], *, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``prefect <args>`` in the project directory (deploy resolves entrypoints from it)."""
    proc = subprocess.run(
        [sys.executable, "-m", "prefect", *args], cwd=PROJECT_DIR, env=dict(env), capture_output=True, text=True,
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        output = f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        raise RuntimeError(f"prefect {' '.join(args[:3])} failed ({proc.returncode}):\n{output}")
    return proc


def create_work_pool(pool: str, env: Mapping[str, str]) -> None:
    prefect_cli(["work-pool", "create", pool, "--type", "process", "--overwrite"], env)


def deploy_all(
    env: Mapping[str, str], *, catalog: str, pool: str = DEFAULT_POOL, cron: str = "0 2 * * *",
    timezone: str = "UTC", names: Sequence[str] = (),
) -> None:
    """``prefect deploy`` the deployments of deployments/prefect.yaml (all, or ``names``)."""
    deploy_env = {
        **env, "BANANAFLOW_CATALOG": catalog, "BANANAFLOW_WORK_POOL": pool,
        "BANANAFLOW_NIGHTLY_CRON": cron, "BANANAFLOW_TIMEZONE": timezone,
    }
    which = [arg for name in names for arg in ("--name", name)] or ["--all"]
    prefect_cli(["--no-prompt", "deploy", *which, "--prefect-file", str(PREFECT_FILE)], deploy_env)


def start_worker(pool: str, name: str, env: Mapping[str, str], log_path: Path, limit: int = 4) -> subprocess.Popen:
    """A process worker in its own process group (stop it with ``stop_process``)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--name", name, "--type", "process",
         "--limit", str(limit)],
        cwd=PROJECT_DIR, env=dict(env), stdout=log_path.open("ab"), stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )


def _has_provider_key(environ: Mapping[str, str]) -> bool:
    return any(environ.get(v) for v in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY"))


def run_stack(args: argparse.Namespace) -> int:
    """Bring everything up, write ``stack.json``, then wait for SIGTERM and tear down."""
    from bananaflow.devstack.local_prefect import ensure_server, is_healthy, server_env

    state = Path(args.state_dir).resolve()
    home = state / "prefect"
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    extra = {}
    if args.scaled and is_healthy(f"http://127.0.0.1:{args.port}/api"):
        raise SystemExit(
            f"a Prefect server already answers on port {args.port}; it would not use PostgreSQL and Redis. "
            "Stop it first (`make down`), or pass --port"
        )
    if args.scaled:
        database_url = os.environ.get("BANANAFLOW_PREFECT_DATABASE_URL", DEFAULT_DATABASE_URL)
        redis_url = os.environ.get("BANANAFLOW_PREFECT_REDIS_URL", DEFAULT_REDIS_URL)
        ensure_database(database_url)
        extra = scaled_server_env(database_url, redis_url)
        # the workers' runs share one set of meters: limits hold across both workers
        os.environ.setdefault("BANANAFLOW_REDIS_URL", DEFAULT_LIMITS_REDIS_URL)
    api_url = ensure_server(home, port=args.port, extra_env=extra)
    os.environ.update({**server_env(home), "PREFECT_API_URL": api_url})

    with contextlib.ExitStack() as stack:
        bucket = args.bucket
        if not _has_provider_key(os.environ):
            from bananaflow.cli.demo import DEMO_API_KEY, demo_simulator_config
            from bananaflow.devstack.local_s3 import LocalS3Server
            from bananaflow.testing.simulator import SimulatorServer

            s3 = stack.enter_context(LocalS3Server(state / "s3"))
            sim = stack.enter_context(SimulatorServer(demo_simulator_config()))
            os.environ.update(s3.env())
            os.environ.update(
                {"GEMINI_API_KEY": DEMO_API_KEY, "GOOGLE_GEMINI_BASE_URL": sim.base_url,
                 "BANANAFLOW_SPOOL_DIR": str(state / "spool")}
            )
            bucket = bucket or LOCAL_BUCKET
        if not bucket:
            raise SystemExit("bananaflow up: pass --bucket (or BANANAFLOW_BUCKET) for the S3 bucket to write to")

        from bananaflow_prefect.blocks.from_env import save_blocks_from_env

        save_blocks_from_env(bucket, args.prefix)
        create_work_pool(args.pool, os.environ)
        deploy_all(os.environ, catalog=args.catalog, pool=args.pool, cron=args.cron, timezone=args.timezone)
        workers = [
            start_worker(args.pool, f"{args.pool}-worker-{i + 1}", allowing(os.environ, args.catalog),
                         state / f"worker-{i + 1}.log")
            for i in range(args.workers)
        ]
        stack.callback(lambda: [stop_process(w) for w in workers])
        (state / "stack.json").write_text(
            json.dumps({"api_url": api_url, "pool": args.pool, "workers": [w.pid for w in workers],
                        "bucket": bucket, "scaled": args.scaled})
        )
        while not stop.wait(1.0):
            dead = [w for w in workers if w.poll() is not None]
            if dead:
                print(f"a worker exited with code {dead[0].returncode}; see {state}/worker-*.log", file=sys.stderr)
                break
    (state / "stack.json").unlink(missing_ok=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bananaflow_prefect.deployments.local_stack",
                                description=__doc__.splitlines()[0])
    p.add_argument("--state-dir", default=".state")
    p.add_argument("--port", type=int, default=4200)
    p.add_argument("--pool", default=DEFAULT_POOL)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--scaled", action="store_true", help="PostgreSQL + Redis messaging (see module docstring)")
    p.add_argument("--catalog", default=str(PROJECT_DIR / "examples" / "catalog.csv"))
    p.add_argument("--bucket", default=os.environ.get("BANANAFLOW_BUCKET"))
    p.add_argument("--prefix", default="bananaflow")
    p.add_argument("--cron", default=os.environ.get("BANANAFLOW_NIGHTLY_CRON", "0 2 * * *"))
    p.add_argument("--timezone", default=os.environ.get("BANANAFLOW_TIMEZONE", "UTC"))
    return p


if __name__ == "__main__":
    sys.exit(run_stack(build_parser().parse_args()))
