"""``bananaflow demo``: the whole pipeline on embedded defaults, no keys needed.

Starts the bundled Nano Banana simulator (a real HTTP server), a real S3-compatible server
(SeaweedFS ``weed mini``) and a local Prefect server, then runs the catalog flow on the
example catalog exactly as ``bananaflow run`` would against the real API. The simulator
and S3 server stop at the end; the Prefect server is left running on purpose so the run
can be opened in its UI (``make down`` stops it).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from bananaflow.cli.console import console
from bananaflow.cli.launch import exit_code, run_flow
from bananaflow.devstack.local_prefect import ensure_server, server_env, ui_url
from bananaflow.devstack.local_s3 import LocalS3Server
from bananaflow.options import DeliveryOptions, LimitOptions, RunOptions
from bananaflow.reports.summary import OK_STATUSES
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer

DEMO_BUCKET = "bananaflow-demo"
#: Not a secret: the simulator accepts any key; it shows where a real key would go.
DEMO_API_KEY = "demo-key-for-the-local-simulator"


#: The quality gate's show (``bananaflow.testing.simulator.defects``): the camp mug's first image
#: comes back with garbled label text, which the judge catches and a regeneration with its
#: reasons fixes; the espresso cups always come back with a hand in the frame, so after the
#: allowed regenerations they wait for a person under ``review/`` (the demo does not wait).
DEMO_DEFECTS = {"Enamel Camp Mug": "once", "Double-Wall Glass Espresso Cup": "always:extra_object"}


def demo_simulator_config() -> SimulatorConfig:
    """A provider having an ordinary day: 0.3-1.2 s per image (real ones take 8-25 s),
    3% overloaded answers, a per-minute limit, a safety filter that refuses knives, and two
    products whose images carry a defect the quality gate's judge sees."""
    return SimulatorConfig(
        latency_s=(0.3, 1.2),
        rate_503=0.03,
        requests_per_minute=240,
        blocked_words=("knife",),
        seed=7,
        defects=DEMO_DEFECTS,
    )


def run_demo(args: argparse.Namespace) -> int:
    state = Path(args.state_dir).resolve()
    prefect_home = state / "prefect"
    console.print("[bold]bananaflow demo[/]: starting the simulator, a local S3 server and Prefect ...")
    api_url = ensure_server(prefect_home, port=args.prefect_port)
    with LocalS3Server(state / "s3") as s3, SimulatorServer(demo_simulator_config()) as sim:
        os.environ.update(s3.env())
        os.environ.update(server_env(prefect_home))
        os.environ.update(
            {
                "PREFECT_API_URL": api_url,
                "GEMINI_API_KEY": DEMO_API_KEY,
                "GOOGLE_GEMINI_BASE_URL": sim.base_url,
                "BANANAFLOW_SPOOL_DIR": str(state / "spool"),
            }
        )
        console.print(f"simulator {sim.base_url} | S3 {s3.endpoint_url} | Prefect UI {ui_url(api_url)}")
        options = RunOptions(
            delivery=DeliveryOptions(bucket=DEMO_BUCKET, prefix="demo"),
            limits=LimitOptions(max_in_flight=args.concurrency),
        )
        summary = run_flow(args.catalog, options, show_progress=not args.no_progress)
        stats = sim.stats()
        console.print(
            f"simulator answered {stats['requests_total']} requests "
            f"(peak {stats['max_in_flight_seen']} in flight, limit {args.concurrency}) "
            f"and {sim.judge_stats()['requests_total']} judge calls"
        )
        console.print(
            f"quality gate: {summary.get('regenerated', 0)} image(s) made again after a failed check, "
            f"{summary.get('waiting_for_review', 0)} waiting for review under s3://{DEMO_BUCKET}/demo/review/ "
            "(not published; `bananaflow review` decides)"
        )
    console.print(
        "stopped the simulator and the S3 server (its data stays in "
        f"{state / 's3'}). The Prefect server is left running so you can open the run: "
        f"{summary.get('flow_run_url') or ui_url(api_url)} — `make down` stops it."
    )
    return demo_exit_code(summary)


def demo_exit_code(summary: dict[str, object]) -> int:
    """The run's exit code, except that images left for review are the demo's point, not a failure."""
    counts = summary.get("counts")
    waiting = dict(counts) if isinstance(counts, dict) else {}
    rest = {status: n for status, n in waiting.items() if status != "needs_review"}
    return exit_code({**summary, "ok": summary.get("ok") or all(
        status in OK_STATUSES for status, n in rest.items() if n)})
