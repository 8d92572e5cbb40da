"""Soak: 20,000 items through the engine against a faulty simulator and weed mini.

    .venv/bin/python bench/soak.py                 # 20,000 items (a few minutes)
    .venv/bin/python bench/soak.py --items 2000    # a quick look

Not a unit test: it prints figures (resident memory over time, throughput, outcomes) and a
verdict, and exits 1 if anything was lost. It drives ``ItemProcessor`` the way the Prefect
task does (chunks of 100 items, several chunks at once, one shared rate controller), without
20,000 Prefect task runs. The simulator runs in its own process, so its request log does
not count against this process's memory; faults are injected by a script that keeps
hitting every tenth SKU with each kind of bad answer, plus random 500s and 503s.

"Nothing lost" means: every item has exactly one row; every ``succeeded`` row's key is an
object in S3 and every image object belongs to such a row; the simulator served exactly one
good image per success (nothing paid twice, none paid and dropped); no claim or spool file
is left behind.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bananaflow.devstack.local_s3 import LocalS3Server  # noqa: E402
from bananaflow.generation.pipeline import ItemProcessor  # noqa: E402
from bananaflow.generation.retry import RetryPolicy  # noqa: E402
from bananaflow.landing.claims import CLAIM_SUFFIX, KeyClaims  # noqa: E402
from bananaflow.landing.keys import key_stem, params_hash  # noqa: E402
from bananaflow.landing.spool import Spool  # noqa: E402
from bananaflow.landing.storage import ImageStore, make_s3_client  # noqa: E402
from bananaflow.limits.controller import RateController  # noqa: E402
from bananaflow.planning.work import WorkItem  # noqa: E402
from bananaflow.providers import make_provider  # noqa: E402
from bananaflow.providers.settings import ProviderSettings  # noqa: E402
from bananaflow.secrets import Secret  # noqa: E402

MODEL, SIZE, KEY = "gemini-3.1-flash-image", "512", "soak-test-key-0123456789"
#: The client's per-request timeout, and how long a "slow" answer takes (longer).
TIMEOUT_S, SLOW_S = 2.0, 2.5
FAULT_CYCLE = ["429", "503", "html_502", "truncated_json", "no_image", "thought_only",
               "wrong_size", "bad_base64", "reset", "slow", "blocked"]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serve_simulator(items: int) -> None:
    """Child process: the simulator with the soak's faults, printing its URL."""
    from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer

    # Prompts end in "#<n>."; every SKU whose number ends in 7 gets the next fault in line.
    script = {"7.": FAULT_CYCLE * (items // 10 // len(FAULT_CYCLE) + 1)}
    config = SimulatorConfig(latency_s=(0.0, 0.005), rate_500=0.01, rate_503=0.02, script=script,
                             script_retry_delay=0.05, slow_seconds=SLOW_S, api_key=KEY, seed=7)
    with SimulatorServer(config) as sim:
        print(sim.base_url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin


def work_items(n: int) -> list[WorkItem]:
    out = []
    for i in range(n):
        sku = f"SOAK-{i:06d}"
        prompt = f"Studio photo of a ceramic mug, catalog item #{i}."
        digest = params_hash(prompt, MODEL, {"aspect_ratio": "1:1", "image_size": SIZE})
        out.append(WorkItem(i + 2, sku, "main", prompt, MODEL, "1:1", SIZE, key_stem("soak", sku, "main", digest),
                            hashlib.sha256(prompt.encode()).hexdigest()))
    return out


def sim_stats(base_url: str) -> dict:
    with urllib.request.urlopen(f"{base_url}/_simulator/stats", timeout=60) as resp:
        return json.load(resp)


def list_keys(store: ImageStore, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


async def run(args: argparse.Namespace, base_url: str, store: ImageStore, spool_dir: Path) -> tuple[list, list]:
    settings = ProviderSettings("gemini", base_url, Secret(KEY), "header", MODEL, timeout_s=TIMEOUT_S)
    controller = RateController(args.concurrency)
    policy = RetryPolicy(max_attempts=4, initial_wait=0.02, max_wait=0.2, deadline_s=30)
    spool = Spool(spool_dir)
    samples: list[tuple[int, float, float]] = []
    done = 0
    t0 = time.monotonic()

    def on_row(_row: object) -> None:
        nonlocal done
        done += 1
        if done % args.sample_every == 0 or done == args.items:
            samples.append((done, time.monotonic() - t0, rss_mb()))
            print(f"{done:>7} items  {samples[-1][1]:7.1f} s  RSS {samples[-1][2]:7.1f} MB", flush=True)

    provider = make_provider(settings)
    rows: list = []
    items = work_items(args.items)
    chunks = [items[i : i + 100] for i in range(0, len(items), 100)]
    gate = asyncio.Semaphore(args.chunks_at_once)

    async def one_chunk(chunk: list[WorkItem]) -> list:
        async with gate:
            processor = ItemProcessor(provider, store, controller, policy, run_id="soak", spool=spool,
                                      listeners=[on_row],
                                      claims=KeyClaims(store, "soak", lease_s=policy.deadline_s + 60))
            return await processor.process_all(chunk)

    samples.append((0, 0.0, rss_mb()))
    try:
        for result in await asyncio.gather(*(one_chunk(c) for c in chunks)):
            rows.extend(result)
    finally:
        await provider.aclose()
    return rows, samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--chunks-at-once", type=int, default=4)
    parser.add_argument("--sample-every", type=int, default=1000)
    parser.add_argument("--serve-simulator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_simulator:
        serve_simulator(args.items)
        return 0

    # Stopped with SIGTERM: unwind, so weed mini and the simulator stop with us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sim = subprocess.Popen([sys.executable, __file__, "--serve-simulator", "--items", str(args.items)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    with tempfile.TemporaryDirectory(prefix="bananaflow-soak-") as tmp:
        try:
            base_url = sim.stdout.readline().strip() if sim.stdout else ""
            with LocalS3Server(Path(tmp) / "weed") as s3:
                client = make_s3_client(endpoint_url=s3.endpoint_url, region="us-east-1")
                os.environ.update(s3.env())
                store = ImageStore("soak", client=make_s3_client(endpoint_url=s3.endpoint_url, region="us-east-1"))
                del client
                store.ensure_bucket()
                t0 = time.monotonic()
                rows, samples = asyncio.run(run(args, base_url, store, Path(tmp) / "spool"))
                wall = time.monotonic() - t0
                keys = list_keys(store, "soak/")
                stats = sim_stats(base_url)
        finally:
            if sim.stdin:
                sim.stdin.close()
            sim.wait(timeout=30)
        spool_left = list((Path(tmp) / "spool").glob("*.bin"))
    return report(args, rows, samples, wall, keys, stats, spool_left)


def report(args, rows, samples, wall, keys, stats, spool_left) -> int:  # noqa: ANN001
    counts = Counter(row.status for row in rows)
    classes = Counter(row.error_class for row in rows if row.error_class)
    succeeded = {row.key for row in rows if row.status == "succeeded"}
    images = {k for k in keys if CLAIM_SUFFIX not in k}
    claims = [k for k in keys if CLAIM_SUFFIX in k]
    per_item = Counter(row.sku for row in rows)
    # An image the provider finished after the client's timeout is billed but never seen,
    # as with the real API: "slow" answers, and any answer a loaded machine made late.
    # Reported, not hidden; every other image answer must match exactly one success.
    images_served = [r for r in stats["request_log"] if r["outcome"] in ("ok", "slow")]
    late = [r for r in images_served if r["t_end"] - r["t_start"] >= TIMEOUT_S * 0.9]
    in_time = Counter(r["prompt_sha256"] for r in images_served if r not in late)
    success_prompts = {row.prompt_sha256 for row in rows if row.status == "succeeded"}
    checks = {
        "one row per item": len(rows) == args.items and set(per_item.values()) == {1},
        "every success is in S3, every image has a success row": succeeded == images,
        "each success paid once (one in-time image answer per success, none for others)":
            set(in_time) == success_prompts and set(in_time.values()) <= {1},
        "no claim left behind": not claims,
        "spool empty": not spool_left,
    }
    quarter = next((s for s in samples if s[0] >= args.items // 4), samples[0])
    print()
    print(f"items {args.items}, wall {wall:.1f} s, {args.items / wall * 60:.0f} items/min, "
          f"concurrency {args.concurrency}, chunks of 100, {args.chunks_at_once} chunks at once")
    print(f"outcomes: {dict(sorted(counts.items()))}")
    print(f"error classes: {dict(sorted(classes.items()))}")
    print(f"simulator: {stats['requests_total']} requests, outcomes {dict(sorted(stats['by_outcome'].items()))}")
    print(f"RSS: start {samples[0][2]:.1f} MB, at 25% {quarter[2]:.1f} MB, peak {max(s[2] for s in samples):.1f} MB, "
          f"end {samples[-1][2]:.1f} MB (growth after 25%: {samples[-1][2] - quarter[2]:+.1f} MB)")
    print(f"image answers finished after the client's {TIMEOUT_S} s timeout (billed, never received): {len(late)}")
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAIL'}] {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
