"""Is a 10,000-item run fully observable? Prints figures; asserts nothing about speed.

    .venv/bin/python bench/observe_10k.py [--items 10000] [--concurrency 32]

Starts a real ``prefect server start`` (SQLite, the default broker: the setup a single
machine gets), SeaweedFS ``weed mini`` and the simulator with tiny latency, runs the catalog
flow in this process, then asks the *server* (not the flow) what it recorded:
- task runs by state (none lost, none stuck Pending/Running);
- the artifacts (progress at 100 %, summary, gallery);
and reads the manifest back from S3 (every SKU once). Peak RSS of this process (the flow
process) is reported from getrusage. Results: docs/operations.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from flow_caps import write_catalog  # noqa: E402
from stack import Simulator, flow_stack  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    # the simulator in its own process, so the RSS measured here is the flow's alone
    with flow_stack("observe") as (state, env, _), Simulator("--latency", "0-0.01") as sim:
        os.environ.update({**env, "GOOGLE_GEMINI_BASE_URL": sim.base_url})
        return run(args, state, env)


def run(args: argparse.Namespace, state: Path, env: dict[str, str]) -> int:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterId

    from bananaflow.landing.manifest import read_manifest
    from bananaflow.options import DeliveryOptions, LimitOptions
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images

    catalog = state / "catalog.csv"
    write_catalog(catalog, args.items, sku_prefix="B10K")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.monotonic()
    summary = catalog_to_images(catalog=str(catalog), delivery=DeliveryOptions(bucket="bench-10k", prefix="bench"),
                                limits=LimitOptions(max_in_flight=args.concurrency))
    wall = time.monotonic() - t0
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    time.sleep(10)  # let the server's event pipeline settle before counting
    run_id = summary["run_id"]
    with get_client(sync_client=True) as client:
        flow_filter = FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        task_runs, offset = [], 0
        while True:
            page = client.read_task_runs(flow_run_filter=flow_filter, limit=200, offset=offset)
            task_runs += page
            offset += len(page)
            if len(page) < 200:
                break
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
        flow_state = client.read_flow_run(run_id).state.name
    by_state = Counter(t.state.name if t.state else "None" for t in task_runs)
    chunk_runs = [t for t in task_runs if t.task_key.startswith("generate_images")]
    progress = [a for a in artifacts if a.key == "bananaflow-progress"]

    manifest_path = state / "manifest.parquet"
    manifest_path.write_bytes(
        s3_get(env, "bench-10k", summary["manifest"]["parquet"].removeprefix("s3://bench-10k/"))
    )
    rows = read_manifest(manifest_path)
    skus = Counter(r.sku for r in rows)
    figures = {
        "items": args.items,
        "concurrency": args.concurrency,
        "wall_s": round(wall, 1),
        "images_per_min": summary["images_per_min"],
        "flow_state": flow_state,
        "counts": summary["counts"],
        "manifest_rows": len(rows),
        "manifest_distinct_skus": len(skus),
        "manifest_duplicates": sum(1 for n in skus.values() if n > 1),
        "task_runs_recorded": len(task_runs),
        "chunk_task_runs": len(chunk_runs),
        "task_runs_by_state": dict(by_state),
        "task_runs_not_completed": sum(n for s, n in by_state.items() if s != "Completed"),
        "artifacts": sorted(a.key for a in artifacts if a.key),
        "progress_artifact_final": float(progress[0].data) if progress else None,
        "rss_before_run_mb": round(rss_before),
        "rss_peak_mb": round(rss_peak),
    }
    print(json.dumps(figures, indent=2))
    return 0


def s3_get(env: dict[str, str], bucket: str, key: str) -> bytes:
    import boto3

    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


if __name__ == "__main__":
    sys.exit(main())
