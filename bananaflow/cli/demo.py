"""``bananaflow demo``: the whole pipeline on embedded defaults, no keys needed.

Starts the bundled Nano Banana simulator (a real HTTP server), a real S3-compatible server
(SeaweedFS ``weed mini``) and a local Prefect server, then runs the catalog flow on the
example catalog exactly as ``bananaflow run`` would against the real API (``--gcs``: into a
Cloud Storage emulator instead of S3, as a Google Cloud shop's run). The simulator
and S3 server stop at the end; the Prefect server is left running on purpose so the run
can be opened in its UI (``make down`` stops it).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from bananaflow.cli.console import console
from bananaflow.cli.launch import exit_code, run_flow
from bananaflow.devstack.local_gcs import LocalGcsServer
from bananaflow.devstack.local_prefect import ensure_server, server_env, ui_url
from bananaflow.devstack.local_s3 import LocalS3Server
from bananaflow.options import DeliveryOptions, LimitOptions, RunOptions
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer

DEMO_BUCKET = "bananaflow-demo"
#: Not a secret: the simulator accepts any key; it shows where a real key would go.
DEMO_API_KEY = "demo-key-for-the-local-simulator"


def demo_simulator_config() -> SimulatorConfig:
    """A provider having an ordinary day: 0.3-1.2 s per image (real ones take 8-25 s),
    3% overloaded answers, a per-minute limit, and a safety filter that refuses knives."""
    return SimulatorConfig(
        latency_s=(0.3, 1.2),
        rate_503=0.03,
        requests_per_minute=240,
        blocked_words=("knife",),
        seed=7,
    )


def run_demo(args: argparse.Namespace) -> int:
    state = Path(args.state_dir).resolve()
    prefect_home = state / "prefect"
    gcs = bool(getattr(args, "gcs", False))
    store_name = "a Cloud Storage emulator" if gcs else "a local S3 server"
    console.print(f"[bold]bananaflow demo[/]: starting the simulator, {store_name} and Prefect ...")
    api_url = ensure_server(prefect_home, port=args.prefect_port)
    store_server: LocalGcsServer | LocalS3Server = LocalGcsServer(state / "gcs") if gcs else LocalS3Server(state / "s3")
    with store_server as store, SimulatorServer(demo_simulator_config()) as sim:
        os.environ.update(store.env())
        if isinstance(store, LocalGcsServer):
            store.create_bucket(DEMO_BUCKET)
        os.environ.update(server_env(prefect_home))
        os.environ.update(
            {
                "PREFECT_API_URL": api_url,
                "GEMINI_API_KEY": DEMO_API_KEY,
                "GOOGLE_GEMINI_BASE_URL": sim.base_url,
                "BANANAFLOW_SPOOL_DIR": str(state / "spool"),
            }
        )
        where = f"Cloud Storage {store.endpoint_url}" if gcs else f"S3 {store.endpoint_url}"
        console.print(f"simulator {sim.base_url} | {where} | Prefect UI {ui_url(api_url)}")
        options = RunOptions(
            delivery=DeliveryOptions(bucket=f"gs://{DEMO_BUCKET}" if gcs else DEMO_BUCKET, prefix="demo"),
            limits=LimitOptions(max_in_flight=args.concurrency),
        )
        summary = run_flow(args.catalog, options, show_progress=not args.no_progress)
        stats = sim.stats()
        console.print(
            f"simulator answered {stats['requests_total']} requests "
            f"(peak {stats['max_in_flight_seen']} in flight, limit {args.concurrency})"
        )
    kept = state / ("gcs" if gcs else "s3")
    console.print(
        f"stopped the simulator and {store_name} (its data stays in "
        f"{kept}). The Prefect server is left running so you can open the run: "
        f"{summary.get('flow_run_url') or ui_url(api_url)} — `make down` stops it."
    )
    return exit_code(summary)
