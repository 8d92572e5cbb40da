#!/usr/bin/env python3
"""One bananaflow engine worker: ``count`` items through ``ItemProcessor`` under a rate
controller, against a running simulator, into an in-memory store (S3 is not what is
measured). Prints one JSON line with what it did and what it cost in memory and CPU.

Used by ``bench/throughput.py`` (one worker per engine run, so its RSS and CPU are its own)
and by the cross-process test (two workers sharing limits through Redis).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time

from bananaflow.generation.pipeline import ItemProcessor
from bananaflow.generation.retry import RetryPolicy
from bananaflow.limits.admission import Admission
from bananaflow.limits.backends import InProcessBackend, RedisBackend
from bananaflow.limits.controller import RateController
from bananaflow.limits.settings import LimitSettings
from bananaflow.planning.work import WorkItem
from bananaflow.providers import make_provider
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import Secret
from bananaflow.testing.memory_store import MemoryStore


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base-url", required=True)
    p.add_argument("--api-key", default="FAKE-BENCH-0123456789abcdefghijklmnopq")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--first", type=int, default=0, help="number of the first item (distinct prompts per worker)")
    p.add_argument("--model", default="gemini-3-pro-image")
    p.add_argument("--size", default="1K")
    p.add_argument("--aspect", default="1:1")
    p.add_argument("--max-in-flight", type=int, default=8)
    p.add_argument("--rpm", type=float, default=None)
    p.add_argument("--burst", type=int, default=None, help="starts allowed back to back (default: the in-flight cap)")
    p.add_argument("--adaptive", action="store_true", help="learn requests/min from 429/503 (AIMD)")
    p.add_argument("--adaptive-start", type=float, default=None,
                   help="requests/min adaptive mode slow-starts from (default: unmetered until the first push-back)")
    p.add_argument("--redis-url", help="share the limits through this Redis server")
    p.add_argument("--namespace", default="bananaflow-bench")
    p.add_argument("--retry-initial", type=float, default=1.0, help="first retry wait (scale with the simulator's time)")
    p.add_argument("--stop-after", type=float, default=None, help="stop (cancel what is left) after this many seconds")
    return p.parse_args(argv)


def work_items(first: int, count: int, model: str, size: str, aspect: str) -> list[WorkItem]:
    return [
        WorkItem(i, f"SKU-{i:06d}", "main", f"Product photo #{i}", model, aspect, size,
                 f"bench/SKU-{i:06d}/main-{i:08x}", f"{i:064x}")
        for i in range(first, first + count)
    ]


async def run(args: argparse.Namespace) -> dict[str, object]:
    backend = RedisBackend(args.redis_url, namespace=args.namespace) if args.redis_url else InProcessBackend()
    limits = LimitSettings(max_in_flight=args.max_in_flight, requests_per_minute=args.rpm,
                           adaptive=args.adaptive, adaptive_start_rpm=args.adaptive_start)
    admission = Admission(limits, backend=backend)
    if not args.adaptive:  # one scope: the fixed limits exactly as given, burst included
        admission = Admission.for_controller(RateController(
            args.max_in_flight, args.rpm, burst=args.burst, backend=backend, scope=f"bench/{args.model}"))
    settings = ProviderSettings("gemini", args.base_url, Secret(args.api_key), "header", args.model, timeout_s=60)
    provider = make_provider(settings)
    policy = RetryPolicy(max_attempts=8, initial_wait=args.retry_initial, max_wait=args.retry_initial * 30,
                         deadline_s=3600)
    store = MemoryStore()
    processor = ItemProcessor(provider, store, admission, policy,
                              run_id="bench")
    items = work_items(args.first, args.count, args.model, args.size, args.aspect)
    startup = resource.getrusage(resource.RUSAGE_SELF)  # imports and setup, before the first item
    t0 = time.monotonic()
    rows = []

    # Items enter a bounded window (``process_stream``), as the flow feeds them in chunks of at
    # most 100 per task: the controller still decides when each request goes, but 10,000 items
    # are not 10,000 coroutines alive at once.
    async def collect() -> None:
        async for row in processor.process_stream(items, window=max(100, 5 * args.max_in_flight)):
            rows.append(row)

    try:
        await asyncio.wait_for(collect(), timeout=args.stop_after)
    except TimeoutError:
        pass
    finally:
        wall = time.monotonic() - t0
        await provider.aclose()
    latencies = sorted(r.latency_s for r in rows if r.status == "succeeded" and r.latency_s is not None)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    learned = admission.learned_limits()
    return {
        "count": args.count,
        "completed": statuses.get("succeeded", 0),
        "statuses": statuses,
        "stored": len(store.objects),
        "attempts": sum(r.attempts or 0 for r in rows),
        "wall_s": round(wall, 3),
        "latency_p50_s": _pct(latencies, 0.50),
        "latency_p95_s": _pct(latencies, 0.95),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "cpu_startup_s": round(startup.ru_utime + startup.ru_stime, 2),
        "learned_rpm": learned,
    }


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


def main(argv: list[str] | None = None) -> int:
    print(json.dumps(asyncio.run(run(parse_args(argv)))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
