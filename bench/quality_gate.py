#!/usr/bin/env python3
"""The quality gate's price in speed and CPU: the same items with QA off and QA on, at the same
limits, against the simulator (its judge answering beside the image route).

The engine (``ItemProcessor`` in a bounded window, as the flow's item pump feeds it) writes to
an in-memory store: what is measured is the gate (free checks, the judge call under its own
controller, the preset conversion), not S3. The simulator caps image requests in flight at
``--cap``; the ceiling is cap x 60 / mean image latency. With QA on every image also costs a
judge call (``--judge-latency``); "share of ceiling" says whether those calls idle the image
model's slots (they must not: an item waiting for its verdict holds a pump worker, not a slot).

Writes its section of ``docs/benchmarks.md`` (``<!-- section: quality-gate -->``).
"""
from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report_sections import replace_section  # noqa: E402

from bananaflow.generation.gate import gate_for_run, judge_in_flight_for  # noqa: E402
from bananaflow.generation.pipeline import ItemProcessor  # noqa: E402
from bananaflow.generation.pump import window_for  # noqa: E402
from bananaflow.generation.retry import RetryPolicy  # noqa: E402
from bananaflow.limits.admission import Admission  # noqa: E402
from bananaflow.limits.settings import LimitSettings  # noqa: E402
from bananaflow.planning.work import WorkItem  # noqa: E402
from bananaflow.providers import make_provider  # noqa: E402
from bananaflow.providers.settings import ProviderSettings  # noqa: E402
from bananaflow.quality.build import build_judge  # noqa: E402
from bananaflow.secrets import Secret  # noqa: E402
from bananaflow.testing.memory_store import MemoryStore  # noqa: E402
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer  # noqa: E402

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
MODEL = "gemini-3-pro-image"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=120)
    p.add_argument("--cap", type=int, default=8, help="image requests in flight (the simulator's and ours)")
    p.add_argument("--latency", type=float, nargs=2, default=(0.4, 0.8), help="image latency range, s")
    p.add_argument("--judge-latency", type=float, nargs=2, default=(0.2, 0.4), help="judge latency range, s")
    p.add_argument("--no-write", action="store_true", help="print, do not write docs/benchmarks.md")
    return p.parse_args(argv)


def items(count: int, tag: str) -> list[WorkItem]:
    return [WorkItem(i, f"{tag}-{i:05d}", "main", f"Product photo of item {tag}-{i:05d} on white", MODEL, "1:1", "1K",
                     f"bench/{tag}-{i:05d}/main-{i:08x}", f"{i:064x}", output_preset="google-merchant")
            for i in range(count)]


async def one_run(base_url: str, args: argparse.Namespace, qa: bool) -> dict[str, float]:
    settings = ProviderSettings("gemini", base_url, Secret("FAKE-BENCH-0123456789abcdefghijkl"), "header", MODEL,
                                timeout_s=60)
    provider = make_provider(settings)
    admission = Admission(LimitSettings(max_in_flight=args.cap))
    policy = RetryPolicy(max_attempts=5, initial_wait=0.05, max_wait=1.0, deadline_s=600)
    judges = judge_in_flight_for(args.cap) if qa else 0
    judge = build_judge(settings, None) if qa else None
    gate = gate_for_run(judge, max_regenerations=2, budget=None, policy=policy,
                        judge_max_in_flight=judges) if qa else None
    processor = ItemProcessor(provider, MemoryStore(), admission, policy, run_id=f"bench-{qa}", quality=gate)
    work = items(args.items, "QA" if qa else "NOQA")
    before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    rows = [row async for row in processor.process_stream(work, window=window_for(args.cap, judges))]
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_SELF)
    await provider.aclose()
    if judge is not None:
        await judge.aclose()
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    done = sum(1 for r in rows if r.status == "succeeded")
    return {"done": done, "wall_s": wall, "images_per_min": done / wall * 60, "cpu_ms_per_image": cpu / max(1, done) * 1000,
            "judge_usd": sum(r.judge_cost_usd or 0.0 for r in rows)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = SimulatorConfig(latency_s=tuple(args.latency), max_in_flight=args.cap, seed=3)
    config_changes = {"judge_latency_s": tuple(args.judge_latency)}
    with SimulatorServer(config) as sim:
        try:
            sim.configure(**config_changes)
        except TypeError:  # a simulator without its own judge latency: the judge answers at once
            config_changes = {}
        results = {}
        for qa in (False, True):
            sim.reset()
            results[qa] = asyncio.run(one_run(sim.base_url, args, qa))
            if qa:
                results[qa]["judge_calls"] = sim.judge_stats()["requests_total"]
    ceiling = args.cap * 60 / (sum(args.latency) / 2)
    lines = [
        "| QA | images | images/min | share of ceiling | wall s | CPU ms/image | judge calls | judge $ |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for qa, r in results.items():
        lines.append(
            f"| {'on' if qa else 'off'} | {r['done']:.0f} | {r['images_per_min']:.0f} | "
            f"{r['images_per_min'] / ceiling:.1%} | {r['wall_s']:.1f} | {r['cpu_ms_per_image']:.1f} | "
            f"{r.get('judge_calls', 0):.0f} | {r['judge_usd']:.4f} |"
        )
    on, off = results[True], results[False]
    body = "\n".join([
        f"Made by `bench/quality_gate.py` on {date.today().isoformat()} (a shared 2-core machine; the simulator runs "
        "in the same process, so CPU per image includes its share of serving).",
        "",
        f"The engine (`ItemProcessor`, in-memory store) makes {args.items} images (1K, google-merchant preset) with "
        f"QA off, then QA on, at the same limits: {args.cap} image requests in flight (the simulator's cap), image "
        f"latency {args.latency[0]}-{args.latency[1]} s, judge latency "
        + (f"{args.judge_latency[0]}-{args.judge_latency[1]} s" if config_changes else "~0 s (no judge latency knob)")
        + f". Ceiling = cap x 60 / mean latency = **{ceiling:.0f} images/min**. The judge has its own controller "
        "(as many calls in flight as image slots), and an item waiting for its verdict holds a pump worker, not an "
        "image slot, so the judge's latency does not idle the image model.",
        "",
        *lines,
        "",
        f"QA on keeps {on['images_per_min'] / off['images_per_min']:.1%} of QA off's rate "
        f"({on['images_per_min'] / ceiling:.1%} of the ceiling); it costs "
        f"{on['cpu_ms_per_image'] - off['cpu_ms_per_image']:+.1f} ms of CPU per image (the free checks, encoding "
        "the image as it will be published, the judge request and its JSON).",
    ])
    print(body)
    if not args.no_write:
        replace_section(DOC, "quality-gate", "Quality gate: QA on against QA off at the same limits", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
