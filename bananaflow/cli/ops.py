"""``bananaflow up``, ``down`` and ``blocks``: operating bananaflow on a Prefect server.

``up`` starts the local stack supervisor (deployments/local_stack.py) in the background and
returns once the server, pool, workers and deployments are ready; ``down`` stops it and the
Prefect server, whichever of ``up`` and ``demo`` started them. No Prefect import here: the
commands that need Prefect import it lazily or run it in a subprocess.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bananaflow.devstack.processes import stop_process
from bananaflow.errors import ConfigurationError

STACK_PID, STACK_STATE, STACK_LOG = "stack.pid", "stack.json", "stack.log"


def add_ops_commands(sub: argparse._SubParsersAction) -> None:
    up = sub.add_parser("up", help="local Prefect server + work pool + workers + deployments (schedules in the UI)")
    up.add_argument("--state-dir", default=".state")
    up.add_argument("--port", type=int, default=4200, help="Prefect server port (default: %(default)s)")
    up.add_argument("--scaled", action="store_true", help="PostgreSQL + Redis messaging, two workers")
    up.add_argument("--workers", type=int, help="workers polling the pool (default: 1, or 2 with --scaled)")
    up.add_argument("--catalog", help="catalog the scheduled runs read (default: examples/catalog.csv)")
    up.add_argument("--bucket", help="S3 bucket (default: a local one when no provider key is set)")
    up.add_argument("--cron", help="nightly schedule, e.g. '0 2 * * *'")
    up.add_argument("--timezone", help="time zone of --cron, e.g. Europe/Berlin")
    up.add_argument("--wait", type=float, default=240.0, help="seconds to wait for the stack (default: %(default)s)")

    find = sub.add_parser("find", help="where a product's images are, and the task run that made them")
    find.add_argument("sku")
    find.add_argument("--bucket", default=os.environ.get("BANANAFLOW_BUCKET"), help="bucket the runs wrote to")
    find.add_argument("--prefix", help="key prefix (default: the store block's, else bananaflow)")
    find.add_argument("--store-block", help="an image store block instead of --bucket/--prefix, e.g. bananaflow-store "
                      "(what `make up` saved: its endpoint and keys come with it)")
    find.add_argument("--runs", type=int, default=5, help="newest run manifests to look in (default: %(default)s)")

    blocks = sub.add_parser("blocks", help="bananaflow's Prefect blocks")
    blocks_sub = blocks.add_subparsers(dest="blocks_command", required=True)
    blocks_sub.add_parser("register", help="register the block types with the Prefect server")
    create = blocks_sub.add_parser(
        "create-from-env", help="save bananaflow-provider/-store/-limits from GEMINI_API_KEY, AWS_*, BANANAFLOW_*"
    )
    create.add_argument("--bucket", required=True)
    create.add_argument("--prefix", default="bananaflow")


def run_ops_command(args: argparse.Namespace) -> int | None:
    """Run ``args`` if it is one of these commands; None otherwise."""
    if args.command == "up":
        return cmd_up(args)
    if args.command == "blocks":
        return cmd_blocks(args)
    if args.command == "find":
        return cmd_find(args)
    return None


def cmd_up(args: argparse.Namespace) -> int:
    state = Path(args.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    if _stack_pid(state):
        print(f"the stack is already up: {json.loads((state / STACK_STATE).read_text() or '{}').get('api_url', '')}")
        return 0
    workers = args.workers or (2 if args.scaled else 1)
    command = [sys.executable, "-m", "bananaflow_prefect.deployments.local_stack", "--state-dir", str(state),
               "--workers", str(workers), "--port", str(args.port)]
    for flag in ("catalog", "bucket", "cron", "timezone"):
        if getattr(args, flag):
            command += [f"--{flag}", getattr(args, flag)]
    if args.scaled:
        command.append("--scaled")
    (state / STACK_STATE).unlink(missing_ok=True)
    proc = subprocess.Popen(
        command, stdout=(state / STACK_LOG).open("ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    (state / STACK_PID).write_text(str(proc.pid))
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            (state / STACK_PID).unlink(missing_ok=True)
            tail = (state / STACK_LOG).read_text(errors="replace")[-2000:]
            raise ConfigurationError(f"the stack exited with code {proc.returncode}:\n{tail}")
        if (state / STACK_STATE).exists():
            info = json.loads((state / STACK_STATE).read_text())
            ui = info["api_url"].removesuffix("/api")
            print(
                f"Prefect UI {ui} | work pool '{info['pool']}' with {len(info['workers'])} worker(s) | "
                f"bucket {info['bucket']}{' | PostgreSQL + Redis' if info['scaled'] else ''}\n"
                f"deployments: {ui}/deployments (nightly-refresh, retry-unfinished, on-catalog-updated, "
                "catalog-shard, scale-out). `make down` stops everything."
            )
            return 0
        time.sleep(0.5)
    raise ConfigurationError(f"the stack was not ready within {args.wait:.0f} s; see {state / STACK_LOG}")


def stop_stack(state: Path, wait_s: float = 40.0) -> bool:
    """Stop the supervisor ``up`` started (it stops its workers and local servers)."""
    pid = _stack_pid(state)
    (state / STACK_PID).unlink(missing_ok=True)
    return stop_process(pid, wait_s) if pid else False


def _stack_pid(state: Path) -> int | None:
    try:
        pid = int((state / STACK_PID).read_text().strip())
        os.killpg(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None


def cmd_blocks(args: argparse.Namespace) -> int:
    if args.blocks_command == "register":
        from bananaflow_prefect.blocks import register_all

        print("registered block types: " + ", ".join(register_all()))
        return 0
    from bananaflow_prefect.blocks.from_env import save_blocks_from_env

    saved = save_blocks_from_env(args.bucket, args.prefix)
    print(f"saved blocks {saved.provider}, {saved.store}, {saved.limits} (secrets stored encrypted)")
    return 0


def cmd_find(args: argparse.Namespace) -> int:
    """One line per (run, variant) of the SKU, newest run first, with a link to the task
    run (its logs and retries) when the Prefect UI is known (PREFECT_UI_URL / PREFECT_API_URL)."""
    from bananaflow.landing.run_history import find_product

    if not (args.bucket or args.store_block):
        raise ConfigurationError("bananaflow find: pass --bucket (or set BANANAFLOW_BUCKET), or --store-block NAME")
    from bananaflow.options import BlockNames, DeliveryOptions, RunOptions
    from bananaflow_prefect.flows.configure import resolve_store

    options = RunOptions(delivery=DeliveryOptions(bucket=args.bucket, prefix=args.prefix),
                         blocks=BlockNames(store=args.store_block))
    try:
        store, _ = resolve_store(options)
    except ValueError as exc:  # Prefect's answer for a block name it does not have
        raise ConfigurationError(f"bananaflow find: {exc}") from None
    found = find_product(store, args.sku, runs=args.runs)
    if not found:
        print(f"{args.sku}: not in the newest {args.runs} run manifests under {store.uri(store.prefix)}")
        return 1
    ui = _prefect_ui_url()
    for run_dir, row in found:
        where = row.uri or row.key if row.status in ("succeeded", "skipped_exists", "skipped_unchanged", "spooled") else (
            f"{row.error_class}: {row.error_message}".strip(": ")
        )
        task_run = f"{ui}/runs/task-run/{row.task_run_id}" if ui and row.task_run_id else row.task_run_id
        link = f"  task run {task_run}" if task_run else ""
        print(f"{run_dir}  {row.sku}  row {row.row_number}  {row.variant}  {row.status}  {where}{link}")
    return 0


def _prefect_ui_url() -> str:
    """The UI of the Prefect server this shell talks to (environment or active profile)."""
    from prefect.settings import get_current_settings

    ui = get_current_settings().ui_url
    return str(ui).rstrip("/") if ui else ""
