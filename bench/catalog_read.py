"""Reading a large catalog export: time and peak memory of ``load_catalog`` on a ~100 MB file,
and of planning it as a run does (streamed into the run's work store on disk).

Makes a Merchant-Center-style CSV (or a Shopify export with ``--shopify``) of the asked size
from the rows of a real export (tests/fixtures/catalogs/real), with unique ids, then reads it
in a fresh process and reports wall time and peak RSS; then, in another fresh process, plans
every row with the default job into a ``WorkStore`` as the flow's planning task does. ``--write-docs`` updates the
"Reading a large export" section of docs/benchmarks.md.

    .venv/bin/python bench/catalog_read.py --mb 100 --write-docs
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "tests" / "fixtures" / "catalogs" / "real"
SECTION = "## Reading a large export"


def make_export(path: Path, megabytes: float, shopify: bool) -> int:
    """A file of about ``megabytes`` MB built from a real export's rows, ids made unique."""
    source = REAL / ("shopify_legacy_export_hair_store.csv" if shopify else "google_merchant_style_feed_awin_bilali.csv")
    rows = list(csv.reader(io.StringIO(source.read_text("utf-8"), newline="")))
    header, body = rows[0], rows[1:]
    key = header.index("Handle" if shopify else "id")
    target = int(megabytes * 1024 * 1024)
    written = count = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        copy = 0
        while written < target:
            for row in body:
                row = list(row)
                row[key] = f"{row[key]}-{copy}" if row[key] else row[key]
                buffer = io.StringIO()
                csv.writer(buffer, lineterminator="\n").writerow(row)
                line = buffer.getvalue()
                fh.write(line)
                written += len(line.encode("utf-8"))
                count += 1
            copy += 1
    return count


_LOAD = """
import json, resource, sys, time
t0 = time.perf_counter()
from bananaflow.catalog.loader import load_catalog
load = load_catalog(sys.argv[1])
elapsed = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "rss_mb": rss, "accepted": len(load.accepted), "rejected": len(load.rejected),
                  "skipped": len(load.skipped), "preset": load.preset}))
"""

_PLAN = """
import json, resource, sys, time
t0 = time.perf_counter()
from bananaflow.planning.jobspec import build_job
from bananaflow.planning.plan import open_catalog_for, stream_items
from bananaflow.planning.work_store import WorkStore
stream = open_catalog_for(sys.argv[1])
store = WorkStore()
items = store.add(stream_items(stream, build_job(), "bench"))
elapsed = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "rss_mb": rss, "accepted": store.products, "items": items}))
"""


def measure(path: Path, child: str) -> dict:
    done = subprocess.run([sys.executable, "-c", child, str(path)], capture_output=True, text=True, check=True,
                          cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_docs(lines: list[str]) -> None:
    docs = ROOT / "docs" / "benchmarks.md"
    text = docs.read_text("utf-8")
    block = "\n".join([SECTION, "", *lines]) + "\n"
    if SECTION in text:
        text = re.sub(rf"{re.escape(SECTION)}\n.*?(?=\n## |\Z)", block.rstrip("\n") + "\n", text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    docs.write_text(text, "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0)
    parser.add_argument("--shopify", action="store_true", help="a Shopify export instead of a Merchant-style CSV")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("products_export.csv" if args.shopify else "feed.csv")
        rows = make_export(path, args.mb, args.shopify)
        size_mb = path.stat().st_size / 1024 / 1024
        loaded, planned = measure(path, _LOAD), measure(path, _PLAN)
    kind = "Shopify export" if args.shopify else "Merchant-style CSV"
    lines = [
        f"A {size_mb:.0f} MB {kind} ({rows:,} rows, made from tests/fixtures/catalogs/real by "
        "`bench/catalog_read.py`), each step in a fresh process:",
        "",
        "| step | accepted | seconds | peak RSS MB |",
        "|---|---:|---:|---:|",
        f"| `load_catalog`: every row read and held | {loaded['accepted']:,} | {loaded['seconds']:.1f} "
        f"| {loaded['rss_mb']:.0f} |",
        f"| a run's planning: rows streamed, {planned['items']:,} prompts rendered into the work store on disk "
        f"| {planned['accepted']:,} | {planned['seconds']:.1f} | {planned['rss_mb']:.0f} |",
        "",
        "Peak RSS includes the interpreter, pandas and pyarrow imports (about 90 MB). A run's planning "
        "holds the file's bytes (decoded a slice at a time as rows are read) and one entry per SKU to refuse duplicates, "
        "not its rows, its text or its prompts.",
    ]
    print("\n".join(lines))
    if args.write_docs:
        write_docs(lines)


if __name__ == "__main__":
    main()
