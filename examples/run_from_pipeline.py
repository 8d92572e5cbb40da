"""Start a bananaflow run from another Python process (an Airflow/Dagster task, a cron job).

    PREFECT_API_URL=http://127.0.0.1:4200/api \
        python examples/run_from_pipeline.py s3://shop-feeds/catalog.csv --wait

Creates a run of the ``catalog-to-images/catalog-shard`` deployment (any deployment of
catalog-to-images works) on the work pool, with the catalog as its parameter. The
idempotency key makes a retried upstream task reuse the run it already started instead of
starting a second one. Prints the run's id, name and state as JSON; exits 1 if it waited
and the run did not complete. The counts arrive as the ``bananaflow.batch.completed`` event
(and in the run's summary artifact and manifest).
"""
from __future__ import annotations

import argparse
import json
import sys

from prefect.deployments import run_deployment


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("catalog", help="catalog URI: s3://bucket/key or a path the worker can read")
    parser.add_argument("--deployment", default="catalog-to-images/catalog-shard")
    parser.add_argument("--idempotency-key", help="e.g. the upstream job's run id")
    parser.add_argument("--wait", action="store_true", help="wait for the run to finish")
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args()

    flow_run = run_deployment(
        args.deployment,
        parameters={"catalog": args.catalog},
        timeout=args.timeout if args.wait else 0,
        idempotency_key=args.idempotency_key,
        as_subflow=False,
    )
    out = {"flow_run_id": str(flow_run.id), "name": flow_run.name, "state": flow_run.state.name if flow_run.state else None}
    print(json.dumps(out))
    return 0 if (not args.wait or (flow_run.state and flow_run.state.is_completed())) else 1


if __name__ == "__main__":
    sys.exit(main())
