#!/usr/bin/env python3
"""Throughput benchmark: bananaflow vs the usual alternatives, same simulator, same run.

The simulator runs with time scaled down (latency 0.2-1.5 s instead of Pro's 8-25 s) and the
limits of a busy project: 600 requests/min, 20 in flight, 3% of requests answered 503. Each
engine generates the same workload in its own process, one after the other, against the same
simulator (reset in between), and is judged by the simulator's counters and request log:

* bananaflow: the engine (``ItemProcessor`` + rate controller, ``bench/engine_worker.py``)
  with known limits, and in adaptive mode (limits unknown, learned by AIMD); images go to an
  in-memory store (``bananaflow.testing.memory_store``), since S3 is not what is measured;
* seed: ``../shared/baselines/seed_threadpool.py``, the thread pool most articles recommend;
* gather: a plain ``asyncio.gather`` + semaphore loop (``bench/naive_gather.py``).

Then bananaflow's peak memory for 1,000 and 10,000 items (fast simulator, no limits).
Prints a table and writes ``docs/benchmarks.md`` with a PNG plot.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from stack import BANANAFLOW, PY, ROOT, Simulator, flow_stack  # bench/ is on sys.path when run as a script

BENCH = ROOT / "bench"
#: How much faster the simulated model is than Pro (mean 15 s vs 0.85 s): waits written
#: for the real service (the seed's 0.5 s start spacing, its 2 s first retry) are divided by it.
TIME_SCALE = 15.0 / 0.85


@dataclass
class Result:
    name: str
    items: int
    completed: int = 0
    wall_s: float = 0.0
    requests: int = 0
    answered_429: int = 0
    answered_429_after_warmup: float | None = None
    images_served: int = 0
    p50_s: float | None = None
    p95_s: float | None = None
    peak_rss_mb: float = 0.0
    cpu_s: float = 0.0
    cpu_startup_s: float | None = None  # the part of ``cpu_s`` spent before the first item, where the engine says
    note: str = ""
    timeline: list[float] = field(default_factory=list)

    def images_per_min(self) -> float:
        return self.completed / self.wall_s * 60 if self.wall_s else 0.0

    def lost(self) -> int:
        """Images the provider generated (and billed) that did not end up stored."""
        return max(0, self.images_served - self.completed)


def find_seed_baseline(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    for base in (ROOT.parent, *ROOT.parents):
        candidate = base / "shared" / "baselines" / "seed_threadpool.py"
        if candidate.is_file():
            return candidate
    return None


def run_process(cmd: list[str]) -> tuple[dict, float, float]:
    """Run one engine; returns its JSON report, its own peak RSS (MB) and CPU seconds."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read() if proc.stderr else ""
        out.seek(0)
        lines = [ln for ln in out.read().splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"engine failed ({' '.join(cmd[:2])}): exit {proc.returncode}\n{err[-3000:]}")
    return json.loads(lines[-1]), usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def judge(name: str, items: int, report: dict, rss: float, cpu: float, stats: dict, warmup_s: float) -> Result:
    log = stats["request_log"]
    t0 = min((r["t_start"] for r in log), default=0.0)
    per_item: dict[str, list[float]] = {}
    done_at = []
    for r in log:
        span = per_item.setdefault(r["prompt_sha256"] or "", [r["t_start"], r["t_start"]])
        span[0] = min(span[0], r["t_start"])
        if r["outcome"] in ("ok", "slow", "wrong_size") and r["t_end"]:
            span[1] = max(span[1], r["t_end"])
            done_at.append(r["t_end"] - t0)
    latencies = sorted(e - s for s, e in per_item.values() if e > s)
    after = [r for r in log if r["t_start"] - t0 >= warmup_s]
    return Result(
        name=name,
        items=items,
        completed=int(report["completed"]),
        wall_s=float(report["wall_s"]),
        requests=stats["requests_total"],
        answered_429=stats["by_outcome"].get("429", 0),
        answered_429_after_warmup=(sum(r["outcome"] == "429" for r in after) / len(after)) if after else None,
        images_served=stats["images_served"],
        p50_s=statistics.median(latencies) if latencies else None,
        p95_s=latencies[int(0.95 * (len(latencies) - 1))] if latencies else None,
        peak_rss_mb=rss,
        cpu_s=cpu,
        cpu_startup_s=report.get("cpu_startup_s"),
        timeline=sorted(done_at),
    )


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def table(results: list[Result], ceiling: float) -> list[str]:
    head = ("| engine | images/min | share of ceiling | 429 share | p50 item s | p95 item s | peak RSS MB "
            "| CPU ms/image | CPU ms/image after startup | not done | images lost |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        share429 = r.answered_429 / r.requests if r.requests else 0.0
        warm = ""
        if r.answered_429_after_warmup is not None and "adaptive" in r.name:
            warm = f" ({fmt(r.answered_429_after_warmup * 100, '.1f')}% after warm-up)"
        lines.append(
            f"| {r.name} | {r.images_per_min():.0f} | {r.images_per_min() / ceiling:.1%} | {share429:.1%}{warm} "
            f"| {fmt(r.p50_s, '.2f')} | {fmt(r.p95_s, '.2f')} | {r.peak_rss_mb:.0f} "
            f"| {r.cpu_s / max(1, r.completed) * 1000:.1f} | {_after_startup(r)} | {r.items - r.completed} | {r.lost()} |"
        )
    return lines


def _after_startup(r: Result) -> str:
    """CPU per image once the engine is running (imports and setup left out), where the
    engine reports its startup CPU; a short run otherwise charges every image a share of it."""
    if r.cpu_startup_s is None:
        return "n/a"
    return f"{(r.cpu_s - r.cpu_startup_s) / max(1, r.completed) * 1000:.1f}"


def plot(results: list[Result], ceiling: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = [r.name for r in results]
    left.bar(names, [r.images_per_min() / ceiling * 100 for r in results], color="#f2c14e")
    left.axhline(100, color="black", linewidth=0.8, linestyle="--")
    left.set_ylabel("images/min, % of ceiling")
    left.set_title(f"throughput (ceiling {ceiling:.0f} images/min)")
    left.tick_params(axis="x", labelrotation=15)
    for r in results:
        right.plot(r.timeline, range(1, len(r.timeline) + 1), label=r.name)
    if results:
        longest = max((r.timeline[-1] for r in results if r.timeline), default=60.0)
        right.plot([0, longest], [0, ceiling * longest / 60], "k--", linewidth=0.8, label="ceiling")
    right.set_xlabel("seconds")
    right.set_ylabel("images served")
    right.set_title("images over time")
    right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def engine_command(engine: str, sim: Simulator, items: int, args: argparse.Namespace,
                   seed: Path | None) -> tuple[list[str], str]:
    """The command line of one engine's process, and its label in the table."""
    retry_initial = 1.0 / TIME_SCALE
    common = ["--base-url", sim.base_url, "--count", str(items)]
    worker = [PY, str(BENCH / "engine_worker.py")]
    if engine == "bananaflow":
        return ([*worker, *common, "--max-in-flight", str(args.cap), "--rpm", str(args.rpm),
                 "--retry-initial", f"{retry_initial:.4f}"], "bananaflow engine (known limits)")
    if engine == "bananaflow-adaptive":
        cmd = [*worker, *common, "--max-in-flight", str(args.cap), "--adaptive", "--retry-initial", f"{retry_initial:.4f}"]
        if args.adaptive_start is not None:
            cmd += ["--adaptive-start", str(args.adaptive_start)]
        return cmd, "bananaflow engine (adaptive)"
    if engine in ("seed", "seed-fixed"):
        cmd = [PY, str(seed), *common, "--api-key", "FAKE-BENCH-0123456789abcdefghijklmnopq", "--size", "1K",
               "--interval", f"{0.5 / TIME_SCALE:.4f}", "--base-delay", f"{2.0 / TIME_SCALE:.4f}"]
        if engine == "seed":
            return [*cmd, "--workers", "10"], "seed thread pool (as written)"
        return [*cmd, "--workers", str(args.cap), "--find-image"], "seed thread pool, --find-image"
    if engine == "gather":
        return ([PY, str(BENCH / "naive_gather.py"), *common, "--concurrency", str(args.cap),
                 "--initial-wait", f"{retry_initial:.4f}"], "asyncio.gather + semaphore")
    raise SystemExit(f"unknown engine {engine!r}")


def run_whole_flow(sim: Simulator, items: int, args: argparse.Namespace, stack: tuple[Path, dict[str, str], str],
                   ) -> tuple[dict, float, float]:
    """``bananaflow run`` on an ``items``-product catalog, as a user runs it (in ``stack``, from
    ``flow_stack``); *completed* is the images found in S3 afterwards (so an image the
    provider made but the run lost counts)."""
    state, env, _ = stack
    catalog = state / f"catalog-{items}.csv"
    catalog.write_text("sku,title\n" + "".join(f"RUN-{i:05d},Stoneware mug {i}\n" for i in range(items)))
    prefix = f"bench-{time.time_ns()}"
    cmd = [BANANAFLOW, "run", str(catalog), "--bucket", "bench-run", "--prefix", prefix,
           "--size", "1K", "--concurrency", str(args.cap), "--rpm", str(args.rpm), "--no-progress"]
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=state,
                                env={**env, "GOOGLE_GEMINI_BASE_URL": sim.base_url})
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        if os.waitstatus_to_exitcode(status) not in (0, 1):  # 1: some items failed, still a result
            out.seek(0)
            raise SystemExit(f"bananaflow run failed: exit {status}\n{out.read()[-3000:]}")
    import boto3

    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name="us-east-1",
                      aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    stored = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench-run", Prefix=f"{prefix}/"):
        stored += sum(1 for obj in page.get("Contents", [])
                      if "/runs/" not in obj["Key"] and obj["Key"].endswith((".png", ".jpg", ".jpeg", ".webp")))
    return {"completed": stored, "wall_s": wall}, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=1500, help="workload per engine (default: %(default)s)")
    p.add_argument("--rpm", type=int, default=600)
    p.add_argument("--cap", type=int, default=20, help="simulator's in-flight cap")
    p.add_argument("--latency", default="0.2-1.5")
    p.add_argument("--rate-503", type=float, default=0.03)
    p.add_argument("--warmup", type=float, default=90.0, help="seconds of adaptive warm-up excluded from its 429 share")
    p.add_argument("--adaptive-start", type=float, default=None,
                   help="requests/min adaptive mode slow-starts from (default: the engine's default, unmetered "
                        "under the in-flight cap until the first push-back)")
    p.add_argument("--rss-items", default="1000,10000", help="bananaflow memory runs; empty to skip")
    p.add_argument("--engines", default="bananaflow,bananaflow-adaptive,run,seed,seed-fixed,gather")
    p.add_argument("--seed-baseline", help="path of seed_threadpool.py (default: ../shared/baselines/)")
    p.add_argument("--seed-items", type=int, default=200,
                   help="the seed's workload: it never finds the image in Pro's answers (parts[0] is the "
                        "thought text) and sends each item 6 times, so a full workload takes very long")
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = p.parse_args(argv)

    low, high = (float(x) for x in args.latency.split("-"))
    mean_latency = (low + high) / 2
    ceiling = min(args.rpm, args.cap * 60 / mean_latency)
    worker = [PY, str(BENCH / "engine_worker.py")]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    seed = find_seed_baseline(args.seed_baseline)
    notes = []
    if {"seed", "seed-fixed"} & set(engines) and (seed is None or not seed.is_file()):
        msg = ("seed baseline not found (looked for ../shared/baselines/seed_threadpool.py above the repo); "
               "pass --seed-baseline PATH to include it")
        print(msg, file=sys.stderr)
        notes.append(msg)
        engines = [e for e in engines if not e.startswith("seed")]

    sim = Simulator("--latency", args.latency, "--rpm", str(args.rpm), "--max-in-flight", str(args.cap),
                    "--thought-images", "0",
                    "--rate-503", str(args.rate_503), "--seed", "7")
    results: list[Result] = []
    stack = contextlib.ExitStack()
    flow: tuple[Path, dict[str, str], str] | None = None
    try:
        for engine in engines:
            items = args.seed_items if engine == "seed" else args.items
            sim.reset()
            if engine == "run":
                label = "bananaflow run (whole flow: Prefect server, S3)"
                print(f"running {label} on {items} items ...", file=sys.stderr, flush=True)
                flow = flow or stack.enter_context(flow_stack("bench-flow"))
                report, rss, cpu = run_whole_flow(sim, items, args, flow)
            else:
                cmd, label = engine_command(engine, sim, items, args, seed)
                print(f"running {label} on {items} items ...", file=sys.stderr, flush=True)
                report, rss, cpu = run_process(cmd)
            result = judge(label, items, report, rss, cpu, sim.stats(), args.warmup)
            if engine == "seed":
                result.note = (f"{items} items only: it takes candidates[0].content.parts[0], which in Pro's answers "
                               "is the thought text, so it never keeps an image and retries every item 6 times")
            if engine == "seed-fixed":
                result.note = (f"the seed with `--find-image` (its parsing fixed, nothing else) and {args.cap} "
                               "workers, the simulator's in-flight cap (equal limits); start spacing and retries "
                               "as written")
            if engine == "run":
                result.note = ("the whole `bananaflow run` as a user runs it: its own process (CPU and RSS are its "
                               "own), a started Prefect server, SeaweedFS S3; *done* = images found in S3 afterwards; "
                               "its retry waits are not scaled down")
            if report.get("learned_rpm"):
                result.note = "learned " + ", ".join(f"{v:g} rpm" for v in report["learned_rpm"].values())
            results.append(result)
    finally:
        sim.stop()
        stack.close()

    rss_rows: list[tuple[int, float, float]] = []
    sizes = [int(x) for x in args.rss_items.split(",") if x.strip()]
    if sizes:
        fast = Simulator("--latency", "0.01-0.03", "--seed", "7")
        try:
            for n in sizes:
                print(f"memory run: bananaflow on {n} items ...", file=sys.stderr, flush=True)
                report, rss, cpu = run_process([*worker, "--base-url", fast.base_url, "--count", str(n),
                                                "--model", "gemini-3.1-flash-image", "--size", "512",
                                                "--max-in-flight", str(args.cap), "--retry-initial", "0.01"])
                rss_rows.append((n, rss, cpu))
                fast.reset()
        finally:
            fast.stop()

    lines = table(results, ceiling)
    print("\n".join(lines))
    for r in results:
        if r.note:
            print(f"{r.name}: {r.note}")
    for n, rss, cpu in rss_rows:
        print(f"bananaflow {n} items: peak RSS {rss:.0f} MB, CPU {cpu:.1f} s")
    write_report(Path(args.out), args, ceiling, mean_latency, lines, results, rss_rows, notes, argv)
    return 0


def write_report(out: Path, args, ceiling, mean_latency, lines, results, rss_rows, notes, argv) -> None:  # noqa: ANN001
    png = out.with_suffix(".png")
    plot(results, ceiling, png)
    argv = sys.argv[1:] if argv is None else argv  # the figures' command line, as run
    cmd = "make bench" + (f" BENCH_ARGS='{' '.join(argv)}'" if argv else "")
    doc = [
        "# Benchmarks",
        "",
        f"Made by `{cmd}` (`bench/throughput.py`) on {time.strftime('%Y-%m-%d')}, on a shared 2-core machine.",
        "",
        f"Simulator with time scaled down: latency {args.latency} s (mean {mean_latency:.2f} s), "
        f"{args.rpm} requests/min (sliding 60 s window), in-flight cap {args.cap}, {args.rate_503:.0%} of requests "
        f"answered 503. Ceiling = min(RPM, cap x 60 / mean latency) = **{ceiling:.0f} images/min**. "
        f"Each engine makes the same {args.items} images (1K, Nano Banana Pro) in its own process, one after "
        "the other against the same simulator (reset in between); numbers come from the simulator's counters "
        "and request log, so every engine is judged the same way.",
        "",
        *lines,
        "",
        f"![throughput]({png.name})",
        "",
        "- *429 share*: requests answered 429 / all requests. *not done*: items without an image at the end. "
        "*images lost*: images the simulator generated (and a provider would bill) that the engine did not keep.",
        "- The simulator answers like Pro: a thought text part, then the image (`--thought-images 0`: no "
        "thought images). 429 share after warm-up (adaptive): requests after the first "
        f"{args.warmup:.0f} s.",
        "- *p50/p95 item s*: from an item's first request to the answer that carried its image.",
        "- *images/min* counts images made over the engine's own wall time: an engine that gives up on items "
        "early (*not done* > 0) finishes sooner and can show more than the ceiling for the images it did make.",
        "- bananaflow feeds items into a window of max(100, 5 x cap) at a time, as the flow feeds chunks of at "
        "most 100 items per task; the other engines start every item at once, as written.",
        "- bananaflow here is the engine (`ItemProcessor` + `RateController`), without Prefect, writing to an "
        "in-memory store (`bananaflow.testing.memory_store`): the benchmark measures rate control, not S3.",
        f"- Waits written for the real service are divided by the time scale ({TIME_SCALE:.1f}x): the seed's "
        "0.5 s start spacing and 2 s first retry, bananaflow's 1 s first retry.",
    ]
    if any("adaptive" in r.name for r in results):
        start = ("sends unmetered (in-flight cap only) until the first 429, then meters at the rate the simulator "
                 "took in the last minute (AIMD from there)" if args.adaptive_start is None
                 else f"slow-starts from {args.adaptive_start:g} requests/min")
        doc.append(f"- bananaflow (adaptive) knows no limit and no learned value from an earlier run: it {start}.")
    for r in results:
        if r.note:
            doc.append(f"- {r.name}: {r.note}.")
    if rss_rows:
        doc += ["", "## Memory", "", "bananaflow engine, fast simulator (no limits, 10-30 ms), 512 px images:", "",
                "| items | peak RSS MB | CPU s |", "|---:|---:|---:|"]
        doc += [f"| {n:,} | {rss:.0f} | {cpu:.1f} |" for n, rss, cpu in rss_rows]
        if len(rss_rows) >= 2:
            growth = rss_rows[-1][1] / rss_rows[0][1] - 1
            doc += ["", f"{rss_rows[-1][0]:,} items use {growth:+.0%} memory against {rss_rows[0][0]:,}."]
    doc += [*(f"\n> {n}" for n in notes), ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    from report_sections import kept_sections  # bench/ is on sys.path when run as a script

    kept = kept_sections(out)  # sections of the other benchmarks (bench/flow_caps.py, ...)
    out.write_text("\n".join(doc) + ("\n" + kept if kept else ""))
    print(f"wrote {out} and {png}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
