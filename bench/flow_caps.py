#!/usr/bin/env python3
"""Are deep in-flight caps filled by the whole ``bananaflow run``? Requests in flight over time.

    .venv/bin/python bench/flow_caps.py [--caps 8,64,128] [--latency 0.4-0.6]

For each cap: a simulator allowing exactly ``cap`` requests in flight (no RPM limit) with
latency 4-6 s (Flash Image, 512 px, no thought images), and the real
``bananaflow run ... --concurrency cap`` as a user runs it (its own process, a started
Prefect server, real S3: SeaweedFS via ``bananaflow.devstack.local_s3``). Judged from the
simulator's request log: requests in flight over time, the mean in flight while the run
generates, and images/min over the generation window as a share of the ceiling
(cap x 60 / mean latency). Writes a section of ``docs/benchmarks.md`` and a PNG beside it.
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from report_sections import replace_section  # noqa: E402
from stack import BANANAFLOW, Simulator, flow_stack  # noqa: E402


def write_catalog(path: Path, n: int, sku_prefix: str = "CAP") -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sku", "title", "color"])
        for i in range(n):
            writer.writerow([f"{sku_prefix}-{i:05d}", f"Stoneware mug {i}", ("red", "blue", "green")[i % 3]])


def run_bananaflow(catalog: Path, *, bucket: str, prefix: str, concurrency: int, state: Path, env: dict[str, str],
                   base_url: str, what: str) -> tuple[float, os.struct_rusage]:
    """``bananaflow run`` in its own process, as a user starts it: wall time and its rusage."""
    cmd = [BANANAFLOW, "run", str(catalog), "--bucket", bucket, "--prefix", prefix, "--model", "gemini-3.1-flash-image",
           "--size", "512", "--concurrency", str(concurrency), "--no-progress"]
    t0 = time.monotonic()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=state,
                                env={**env, "GOOGLE_GEMINI_BASE_URL": base_url})
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            out.seek(0)
            raise SystemExit(f"bananaflow run failed {what}:\n{out.read()[-3000:]}")
    return wall, usage


def in_flight_series(log: list[dict], step: float = 0.05) -> tuple[list[float], list[int]]:
    """Requests in flight sampled every ``step`` seconds from the first request on."""
    spans = [(r["t_start"], r["t_end"]) for r in log if r.get("t_end")]
    if not spans:
        return [], []
    t0, t1 = min(s for s, _ in spans), max(e for _, e in spans)
    times, counts = [], []
    t = t0
    while t <= t1:
        times.append(t - t0)
        counts.append(sum(1 for s, e in spans if s <= t < e))
        t += step
    return times, counts


def judge(cap: int, items: int, stats: dict, wall_s: float, cpu_s: float, mean_latency: float) -> dict:
    log = stats["request_log"]
    ok = [r for r in log if r["outcome"] in ("ok", "slow", "wrong_size") and r.get("t_end")]
    t0 = min(r["t_start"] for r in log)
    t1 = max(r["t_end"] for r in log if r.get("t_end"))
    span = t1 - t0
    times, counts = in_flight_series(log)
    # the middle of the run: without the first and last latency (ramp-up, the last items' tail)
    middle = [c for t, c in zip(times, counts) if 2 * mean_latency <= t <= span - 2 * mean_latency]
    # While items were still waiting to be sent (up to the last request's start), the run
    # should keep every slot busy: by Little's law, images/min = in flight x 60 / latency, so
    # the mean in flight over cap is the share of the ceiling it used. After that only the
    # last requests' answers are awaited, a tail no scheduler can shorten.
    last_start = max(r["t_start"] for r in log) - t0
    sending = [c for t, c in zip(times, counts) if t <= last_start]
    ceiling = cap * 60 / mean_latency
    return {
        "cap": cap,
        "items": items,
        "images": len(ok),
        "requests": stats["requests_total"],
        "answered_429": stats["by_outcome"].get("429", 0),
        "generation_s": span,
        "wall_s": wall_s,
        "cpu_ms_per_image": cpu_s / max(1, len(ok)) * 1000,
        "share": len(ok) / span * 60 / ceiling if span else 0.0,
        "share_sending": sum(sending) / len(sending) / cap if sending else 0.0,
        "mean_in_flight": sum(middle) / len(middle) if middle else 0.0,
        "min_in_flight": min(middle) if middle else 0,
        "series": (times, counts),
    }


def run_cap(cap: int, items: int, latency: str, state: Path, env: dict[str, str]) -> dict:
    low, high = (float(x) for x in latency.split("-"))
    catalog = state / f"catalog-{cap}.csv"
    write_catalog(catalog, items)
    sim = Simulator("--latency", latency, "--max-in-flight", str(cap), "--rpm", "1000000",
                    "--thought-images", "0", "--seed", "7")
    try:
        print(f"cap {cap}: {items} items ...", file=sys.stderr, flush=True)
        wall, usage = run_bananaflow(catalog, bucket="bench-caps", prefix=f"cap{cap}-{time.time_ns()}", concurrency=cap,
                                     state=state, env=env, base_url=sim.base_url, what=f"at cap {cap}")
        return judge(cap, items, sim.stats(), wall, usage.ru_utime + usage.ru_stime, (low + high) / 2)
    finally:
        sim.stop()


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.6), squeeze=False)
    for ax, r in zip(axes[0], results):
        times, counts = r["series"]
        ax.plot(times, counts, linewidth=0.8)
        ax.axhline(r["cap"], color="black", linestyle="--", linewidth=0.8)
        ax.set_ylim(0, r["cap"] * 1.15)
        ax.set_title(f"cap {r['cap']}: {r['share_sending']:.0%} of ceiling while work waited")
        ax.set_xlabel("seconds")
        ax.set_ylabel("requests in flight")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def report(results: list[dict], args: argparse.Namespace, png: Path) -> str:
    lines = [
        f"Made by `bench/flow_caps.py` on {time.strftime('%Y-%m-%d')} (a 2-core machine: the run, the simulator, "
        "SeaweedFS and the Prefect server share its cores; CPU figures rise when other jobs run). "
        "The whole `bananaflow run` (its own process, a started Prefect "
        f"server, SeaweedFS S3) against a simulator allowing exactly *cap* requests in flight, latency "
        f"{args.latency} s, Flash Image 512 px, no RPM limit. *share of ceiling while work waited*: requests in "
        "flight (sampled every 50 ms) from the first request to the last one sent, over the cap: by Little's law "
        "the share of cap x 60 / mean latency images/min the run used while it had items to send. *whole window*: "
        "images/min from the first request to the last answer over the ceiling, ramp-up and the last requests' "
        "tail included (at a few rounds of the cap the tail alone is several percent). *mean/min in flight*: "
        "without the first and last 2 latencies.",
        "",
        "| cap | items | images | 429s | share of ceiling while work waited | whole window | mean in flight "
        "| min in flight | generation s | command wall s | CPU ms/image (run process) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['cap']} | {r['items']} | {r['images']} | {r['answered_429']} | {r['share_sending']:.1%} | {r['share']:.1%} "
            f"| {r['mean_in_flight']:.1f} | {r['min_in_flight']} | {r['generation_s']:.1f} | {r['wall_s']:.1f} "
            f"| {r['cpu_ms_per_image']:.1f} |"
        )
    lines += ["", f"![requests in flight]({png.name})", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--caps", default="8,64,128")
    p.add_argument("--latency", default="4-6", help="simulated latency (default: Pro's 4-6 s, not scaled down: at "
                   "0.4-0.6 s a cap of 128 asks for 256 images/s, more than 2 shared cores can process)")
    p.add_argument("--items", type=int, default=0, help="items per cap (default: max(80, 8 x cap))")
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    p.add_argument("--section", default="flow-caps", help="section of --out to write (one per latency)")
    args = p.parse_args(argv)
    caps = [int(c) for c in args.caps.split(",") if c.strip()]

    with flow_stack("caps") as (state, env, _):
        results = [run_cap(cap, args.items or max(80, 8 * cap), args.latency, state, env) for cap in caps]
    out = Path(args.out)
    png = out.with_name(f"{args.section.replace('-', '_')}.png")
    plot(results, png)
    section = report(results, args, png)
    print(section)
    replace_section(out, args.section, f"Deep in-flight caps: the whole `bananaflow run`, latency {args.latency} s",
                    section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
