#!/usr/bin/env python3
"""Where the CPU of a whole ``bananaflow run`` goes: a py-spy profile, summed by component.

    .venv/bin/python bench/profile_flow.py [--items 1500] [--concurrency 32]

The real ``bananaflow run`` (a started Prefect server, SeaweedFS S3, the fast simulator)
under ``py-spy record --gil``: only samples where a thread holds the GIL, i.e. Python
work, which is what limits one process. Prints and writes to ``docs/benchmarks.md`` the
share of samples per component (a sample counts for the first component found from the
innermost frame outwards) and the top functions by inclusive share.
"""
from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from flow_caps import write_catalog  # noqa: E402
from report_sections import replace_section  # noqa: E402
from stack import BANANAFLOW, Simulator, flow_stack  # noqa: E402

#: (component, substrings of a frame's file): the innermost matching frame names the sample.
COMPONENTS = (
    ("imports (startup)", ("<frozen importlib",)),
    ("S3 calls (boto3/botocore/urllib3)", ("botocore/", "boto3/", "urllib3/", "s3transfer/")),
    ("provider HTTP (httpx/httpcore/h11/anyio)", ("httpx/", "httpcore/", "h11/", "anyio/")),
    ("image checks (Pillow, base64)", ("PIL/", "base64.py", "providers/imaging.py")),
    ("manifest and reports (pandas/pyarrow)", ("pandas/", "pyarrow/", "landing/manifest", "landing/rowlog")),
    ("Prefect (task runs, artifacts, API client)", ("prefect/", "pydantic", "sqlalchemy/")),
    ("retries and rate control (tenacity, limits)", ("tenacity/", "bananaflow/limits/", "generation/retry.py")),
    ("event loop and threads", ("asyncio/", "concurrent/futures", "threading.py", "selectors.py")),
    ("bananaflow (other)", ("bananaflow/", "tasks/", "flows/")),
)


def component(stack: list[str]) -> str:
    for frame in reversed(stack):
        for name, needles in COMPONENTS:
            if any(needle in frame for needle in needles):
                return name
    return "other"


#: Entry points every sample of the main thread passes through: not worth a line of the top list.
ENTRY_POINTS = ("<module> (", "main (bananaflow/cli/main.py", "cmd_run (", "run_flow (bananaflow/cli")


def summarize(raw: Path) -> tuple[collections.Counter, collections.Counter, int, int]:
    by_component: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = unreadable = 0
    for line in raw.read_text().splitlines():
        stack_text, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n, stack = int(count), [frame for frame in stack_text.split(";") if frame]
        if not stack:  # a GIL holder without a Python frame (py-spy could not read its stack)
            unreadable += n
            continue
        total += n
        by_component[component(stack)] += n
        for frame in set(stack):
            if ("bananaflow" in frame or "tasks/" in frame or "flows/" in frame) and not frame.startswith(ENTRY_POINTS):
                inclusive[re.sub(r":\d+\)$", ")", frame)] += n  # one entry per function, not per line
    return by_component, inclusive, total, unreadable


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=1500)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = p.parse_args(argv)
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not py_spy:
        raise SystemExit("py-spy is not installed: pip install -r requirements.lock (it is in the bench extra)")

    sim = Simulator("--latency", "0.01-0.03", "--thought-images", "0", "--seed", "7")
    try:
        with flow_stack("profile") as (state, env, _):
            env["GOOGLE_GEMINI_BASE_URL"] = sim.base_url
            raw = state / "profile.txt"
            catalog = state / "catalog.csv"
            write_catalog(catalog, args.items, sku_prefix="PROF")
            cmd = [py_spy, "record", "--gil", "--rate", "100", "--format", "raw", "--output", str(raw), "--",
                   BANANAFLOW, "run", str(catalog), "--bucket", "bench-profile", "--prefix", "p", "--model",
                   "gemini-3.1-flash-image", "--size", "512", "--concurrency", str(args.concurrency), "--no-progress"]
            out = subprocess.run(cmd, cwd=state, env=env, capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"profiled run failed (exit {out.returncode}):\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    finally:
        sim.stop()
    by_component, inclusive, total, unreadable = summarize(raw)
    lines = [
        f"Made by `bench/profile_flow.py --items {args.items}` on {time.strftime('%Y-%m-%d')}: `py-spy record --gil` "
        "of one whole `bananaflow run` (started Prefect server, SeaweedFS S3, fast simulator, Flash Image 512 px, "
        f"`--concurrency {args.concurrency}`), {total:,} samples of a thread holding the GIL ({unreadable:,} more "
        "without a readable Python stack are left out). A sample counts for the innermost frame's component.",
        "",
        "| component | share of samples |",
        "|---|---:|",
        *(f"| {name} | {n / total:.1%} |" for name, n in by_component.most_common()),
        "",
        f"Top {args.top} of bananaflow's own functions, inclusive (a share counts everything they call):",
        "",
        "| function | inclusive share |",
        "|---|---:|",
        *(f"| `{frame}` | {n / total:.1%} |" for frame, n in inclusive.most_common(args.top)),
    ]
    section = "\n".join(lines) + "\n"
    print(section)
    replace_section(Path(args.out), "flow-profile", "Where a whole run's CPU goes (profile)", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
