#!/usr/bin/env python3
"""Benchmark opponent: the plain ``asyncio.gather`` + ``asyncio.Semaphore`` loop many people
write first. It knows the in-flight cap (the semaphore) but meters nothing per minute, and
retries 429/5xx with exponential backoff and jitter without reading the server's delay or
telling the other coroutines. Prints one JSON line like ``engine_worker.py``.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import resource
import sys
import time

import httpx


async def one(client: httpx.AsyncClient, sem: asyncio.Semaphore, url: str, prompt: str, args) -> bool:  # noqa: ANN001
    body = {
        "contents": [{"parts": [{"text": prompt}]}],
        "generationConfig": {"responseModalities": ["IMAGE"],
                             "imageConfig": {"aspectRatio": args.aspect, "imageSize": args.size}},
    }
    for attempt in range(args.max_attempts):
        async with sem:
            try:
                r = await client.post(url, json=body, timeout=60)
            except httpx.HTTPError:
                r = None
        if r is not None and r.status_code == 200:
            parts = r.json()["candidates"][0]["content"]["parts"]
            images = [p for p in parts if "inlineData" in p and not p.get("thought")]
            if images:
                base64.b64decode(images[-1]["inlineData"]["data"])
                return True
        elif r is not None and r.status_code not in (408, 429, 500, 502, 503, 504):
            return False
        await asyncio.sleep(random.uniform(0, min(args.max_wait, args.initial_wait * 2 ** attempt)))
    return False


async def run(args: argparse.Namespace) -> dict[str, object]:
    url = f"{args.base_url.rstrip('/')}/v1beta/models/{args.model}:generateContent"
    sem = asyncio.Semaphore(args.concurrency)
    t0 = time.monotonic()
    async with httpx.AsyncClient(headers={"x-goog-api-key": args.api_key},
                                 limits=httpx.Limits(max_connections=args.concurrency)) as client:
        results = await asyncio.gather(*(one(client, sem, url, f"Product photo #{i}", args) for i in range(args.count)))
    wall = time.monotonic() - t0
    return {"completed": sum(results), "failed": len(results) - sum(results), "wall_s": round(wall, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base-url", required=True)
    p.add_argument("--api-key", default="FAKE-BENCH-0123456789abcdefghijklmnopq")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--model", default="gemini-3-pro-image")
    p.add_argument("--size", default="1K")
    p.add_argument("--aspect", default="1:1")
    p.add_argument("--concurrency", type=int, default=20)
    p.add_argument("--max-attempts", type=int, default=8)
    p.add_argument("--initial-wait", type=float, default=0.05)
    p.add_argument("--max-wait", type=float, default=3.0)
    print(json.dumps(asyncio.run(run(p.parse_args(argv)))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
