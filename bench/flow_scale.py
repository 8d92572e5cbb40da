#!/usr/bin/env python3
"""One ``bananaflow run`` of 100,000 items on one machine, and is everything right after it?

    .venv/bin/python bench/flow_scale.py [--items 100000] [--concurrency 32]

The real ``bananaflow run`` in its own process against a started Prefect server on its
default SQLite database (as ``make up`` starts it), real S3 (SeaweedFS) and the fast
simulator (10-30 ms, Flash Image 512 px). Measured: peak RSS and CPU of the run process
(``wait4``), wall time. Checked afterwards, each from where a user would look:

* the Prefect server: the flow run Completed, how many task runs it made and that none is
  left Pending/Running (lost or stuck), the progress artifact at 100% and the summary
  artifact present;
* S3: images stored, and the manifest's row count and statuses (read from the Parquet file);
* ``bananaflow find`` for a product near the end of the catalog: its row and image.

Takes about an hour at 100,000 items on a 2-core machine. Writes a section of
``docs/benchmarks.md``.
"""
from __future__ import annotations

import argparse
import io
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from flow_caps import run_bananaflow, write_catalog  # noqa: E402
from report_sections import replace_section  # noqa: E402
from stack import BANANAFLOW, Simulator, flow_stack  # noqa: E402

BUCKET = "bench-scale"


def prefect_checks(api_url: str) -> dict:
    """The newest flow run's state, its task runs by state, and its artifacts, from the API."""
    with httpx.Client(base_url=api_url, timeout=60) as api:
        run = api.post("/flow_runs/filter", json={"sort": "START_TIME_DESC", "limit": 1}).json()[0]
        states: Counter[str] = Counter()
        offset = 0
        while True:
            page = api.post("/task_runs/filter", json={"flow_runs": {"id": {"any_": [run["id"]]}},
                                                       "limit": 200, "offset": offset}).json()
            states.update(t["state_type"] for t in page)
            offset += len(page)
            if len(page) < 200:
                break
        artifacts = api.post("/artifacts/filter", json={"flow_runs": {"id": {"any_": [run["id"]]}}}).json()
    progress = [a["data"] for a in artifacts if a["type"] == "progress"]
    keys = {a.get("key") for a in artifacts}
    return {"flow_run": run["name"], "flow_state": run["state_type"], "task_runs": dict(states),
            "progress": progress[0] if progress else None, "summary": "bananaflow-summary" in keys}


def s3_checks(env: dict[str, str], prefix: str) -> dict:
    """Images under the run's prefix, and the manifest's rows by status."""
    import boto3
    import pyarrow.parquet as pq

    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name="us-east-1",
                      aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    images, manifest_key = 0, None
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{prefix}/"):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith("/manifest.parquet"):
                manifest_key = key
            elif "/runs/" not in key and key.endswith((".png", ".jpg", ".jpeg", ".webp")):
                images += 1
    statuses: Counter[str] = Counter()
    if manifest_key:
        body = s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read()
        statuses.update(pq.read_table(io.BytesIO(body), columns=["status"]).column("status").to_pylist())
    return {"images": images, "manifest_rows": sum(statuses.values()), "statuses": dict(statuses)}


def find_check(sku: str, prefix: str, env: dict[str, str], state: Path) -> str:
    """What ``bananaflow find`` prints for ``sku`` (its first line), and how long it took."""
    t0 = time.monotonic()
    out = subprocess.run([BANANAFLOW, "find", sku, "--bucket", BUCKET, "--prefix", prefix], cwd=state, env=env,
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"bananaflow find {sku} failed (exit {out.returncode}):\n{out.stdout}{out.stderr}")
    return f"{out.stdout.strip().splitlines()[0]} ({time.monotonic() - t0:.1f} s)"


def report(n: int, args: argparse.Namespace, measured: dict) -> str:
    prefect, s3 = measured["prefect"], measured["s3"]
    not_final = {k: v for k, v in prefect["task_runs"].items() if k not in ("COMPLETED",)}
    by_state = ", ".join(f"{v} {k}" for k, v in prefect["task_runs"].items())
    return "\n".join([
        f"Made by `bench/flow_scale.py --items {n}` on {time.strftime('%Y-%m-%d')} (shared 2-core machine). One "
        "`bananaflow run` in its own process against `prefect server start` on its default SQLite database, "
        f"SeaweedFS S3 and the fast simulator (10-30 ms, Flash Image 512 px), `--concurrency {args.concurrency}`.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| items | {n:,} |",
        f"| images in S3 afterwards | {s3['images']:,} |",
        f"| peak RSS of the run process | {measured['rss_mb']:.0f} MB |",
        f"| CPU of the run process | {measured['cpu_s'] / max(1, n) * 1000:.1f} ms per image |",
        f"| wall time | {measured['wall_s'] / 60:.1f} min |",
        f"| flow run | {prefect['flow_state']} |",
        f"| task runs | {sum(prefect['task_runs'].values()):,} ({by_state}) |",
        f"| task runs not Completed | {sum(not_final.values())} |",
        f"| progress artifact | {prefect['progress']}% |",
        f"| summary artifact | {'present' if prefect['summary'] else 'missing'} |",
        f"| manifest rows | {s3['manifest_rows']:,} ({', '.join(f'{v:,} {k}' for k, v in s3['statuses'].items())}) |",
        "",
        f"`bananaflow find {measured['sku']}` afterwards: `{measured['find']}`",
    ]) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = p.parse_args(argv)
    n = args.items

    sim = Simulator("--latency", "0.01-0.03", "--thought-images", "0", "--seed", "7")
    prefix = f"scale{n}"
    try:
        with flow_stack("scale") as (state, env, api_url):
            catalog = state / f"catalog-{n}.csv"
            write_catalog(catalog, n, sku_prefix="BIG")
            print(f"{n:,} items ...", file=sys.stderr, flush=True)
            wall, usage = run_bananaflow(catalog, bucket=BUCKET, prefix=prefix, concurrency=args.concurrency,
                                         state=state, env=env, base_url=sim.base_url, what=f"on {n} items")
            sku = f"BIG-{n - 7:05d}"
            measured = {"wall_s": wall, "rss_mb": usage.ru_maxrss / 1024, "cpu_s": usage.ru_utime + usage.ru_stime,
                        "prefect": prefect_checks(api_url), "s3": s3_checks(env, prefix), "sku": sku,
                        "find": find_check(sku, prefix, env, state)}
    finally:
        sim.stop()
    section = report(n, args, measured)
    print(section)
    replace_section(Path(args.out), "flow-scale", f"One run of {n:,} items on one machine", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
