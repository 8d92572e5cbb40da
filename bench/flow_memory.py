#!/usr/bin/env python3
"""Does the whole ``bananaflow run`` keep flat memory as the catalog grows? Peak RSS, CPU, startup.

    .venv/bin/python bench/flow_memory.py [--sizes 2000,8000] [--concurrency 32]

The real ``bananaflow run`` in its own process against a started Prefect server (so the peak
RSS measured by ``wait4`` is the run process alone), real S3 (SeaweedFS via
``bananaflow.devstack.local_s3``) and the fast simulator (10-30 ms, Flash Image 512 px).
Per size: peak RSS of the run process, its CPU ms per image, wall time. Then startup: a
10-item catalog from the command to the simulator's first request, with the server (and,
with ``--startup-without-server``, without ``PREFECT_API_URL``: a temporary server is started).
Writes a section of ``docs/benchmarks.md``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from flow_caps import run_bananaflow, write_catalog  # noqa: E402
from report_sections import replace_section  # noqa: E402
from stack import Simulator, flow_stack  # noqa: E402

from bananaflow.devstack.local_prefect import server_env  # noqa: E402


def run_once(n: int, concurrency: int, state: Path, env: dict[str, str], sim: Simulator) -> dict:
    catalog = state / f"catalog-{n}.csv"
    write_catalog(catalog, n)
    sim.reset()
    print(f"{n} items ...", file=sys.stderr, flush=True)
    started = time.time()
    wall, usage = run_bananaflow(catalog, bucket="bench-memory", prefix=f"m{n}-{time.time_ns()}",
                                 concurrency=concurrency, state=state, env=env, base_url=sim.base_url,
                                 what=f"on {n} items")
    stats = sim.stats()
    first = min((r["t_start"] for r in stats["request_log"]), default=None)
    cpu = usage.ru_utime + usage.ru_stime
    return {"items": n, "images": stats["images_served"], "rss_mb": usage.ru_maxrss / 1024, "cpu_s": cpu,
            "cpu_ms_per_image": cpu / max(1, n) * 1000, "wall_s": wall,
            "to_first_request_s": (first - started) if first else None}


def report(rows: list[dict], startup: list[tuple[str, dict]], args: argparse.Namespace) -> str:
    lines = [
        f"Made by `bench/flow_memory.py` on {time.strftime('%Y-%m-%d')} (a 2-core machine shared by the run, the "
        "simulator, SeaweedFS and the Prefect server; CPU and wall figures rise when other jobs run, RSS much "
        "less). The whole `bananaflow run` in its own "
        "process, a started Prefect server, SeaweedFS S3, the fast simulator (10-30 ms, Flash Image 512 px), "
        f"`--concurrency {args.concurrency}`. RSS and CPU are the run process's own (`wait4`).",
        "",
        "| items | images | peak RSS MB | CPU ms/image | wall s |",
        "|---:|---:|---:|---:|---:|",
        *(f"| {r['items']:,} | {r['images']:,} | {r['rss_mb']:.0f} | {r['cpu_ms_per_image']:.1f} | {r['wall_s']:.1f} |"
          for r in rows),
    ]
    if len(rows) >= 2:
        growth = rows[-1]["rss_mb"] / rows[0]["rss_mb"] - 1
        per_item = (rows[-1]["rss_mb"] - rows[0]["rss_mb"]) * 1024 / max(1, rows[-1]["items"] - rows[0]["items"])
        lines += ["", f"{rows[-1]['items']:,} items: {growth:+.1%} peak RSS against {rows[0]['items']:,} "
                      f"({per_item:.2f} KB per extra item)."]
    if startup:
        lines += ["", "Startup, 10-item catalog, from the command to the simulator's first request:", "",
                  "| setup | seconds |", "|---|---:|"]
        lines += [f"| {name} | {r['to_first_request_s']:.1f} |" for name, r in startup if r["to_first_request_s"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="2000,8000")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--startup-without-server", action="store_true")
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = p.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]

    rows, startup = [], []
    sim = Simulator("--latency", "0.01-0.03", "--thought-images", "0", "--seed", "7")
    try:
        with flow_stack("memory") as (state, env, _):
            startup.append(("a Prefect server is running (`PREFECT_API_URL` set)", run_once(10, 8, state, env, sim)))
            rows = [run_once(n, args.concurrency, state, env, sim) for n in sizes]
            if args.startup_without_server:
                alone = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
                alone.update(server_env(state / "prefect-temporary"))
                startup.append(("no server (`bananaflow run` starts a temporary one)",
                                run_once(10, 8, state, alone, sim)))
    finally:
        sim.stop()
    section = report(rows, startup, args)
    print(section)
    replace_section(Path(args.out), "flow-memory", "Memory of the whole `bananaflow run`", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
