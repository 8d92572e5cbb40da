"""Serve bananaflow's deployments from one process: schedules and triggers without a work pool.

    python -m bananaflow_prefect.deployments.serve --catalog s3://shop-feeds/catalog.csv --cron "0 2 * * *" \
        --timezone Europe/Berlin

Needs a Prefect server (``PREFECT_API_URL``) and the three blocks (``bananaflow blocks
create-from-env``), or ``--no-blocks`` to let every run read the provider key and S3
settings from this process's environment. Runs start as subprocesses of this one; stop it
with Ctrl-C. For several machines use a work pool instead (deployments/prefect.yaml).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from prefect import serve

from bananaflow.options import BlockNames
from bananaflow_prefect.deployments.definitions import DEFAULT_BLOCKS, DEFAULT_CRON, DEFAULT_TIMEZONE, Schedule, build_deployments


def deployments_from_args(argv: Sequence[str] | None = None) -> tuple[list, int]:
    """The deployments this command line describes, and how many runs at once."""
    parser = argparse.ArgumentParser(prog="python -m bananaflow_prefect.deployments.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", required=True, help="catalog the nightly refresh and hourly retry read")
    parser.add_argument("--cron", default=DEFAULT_CRON, help="nightly schedule (default: %(default)s)")
    parser.add_argument("--timezone", default=DEFAULT_TIMEZONE, help="IANA time zone of --cron (default: %(default)s)")
    parser.add_argument("--no-blocks", action="store_true", help="configure runs from the environment, not blocks")
    parser.add_argument("--bucket", help="bucket, with --no-blocks: S3 (endpoint and keys from AWS_* env) or "
                        "gs://bucket[/prefix] (Google's ADC)")
    parser.add_argument("--prefix", default=None, help="key prefix, with --no-blocks (default: the one in --bucket, "
                        "else bananaflow)")
    parser.add_argument("--mode", choices=("realtime", "batch", "auto"), help="execution mode of every run "
                        "(default: the job spec's, else realtime)")
    parser.add_argument("--limit", type=int, default=4, help="flow runs at once in this process (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.no_blocks and not args.bucket:
        parser.error("--no-blocks needs --bucket (the S3 bucket for images and manifests)")
    blocks = BlockNames() if args.no_blocks else DEFAULT_BLOCKS
    defaults: dict[str, dict[str, str]] = {}
    if args.no_blocks:
        defaults["delivery"] = {"bucket": args.bucket, **({"prefix": args.prefix} if args.prefix else {})}
    if args.mode:
        defaults["execution"] = {"mode": args.mode}
    return build_deployments(args.catalog, Schedule(args.cron, args.timezone), blocks, defaults), args.limit


def main(argv: Sequence[str] | None = None) -> int:
    deployments, limit = deployments_from_args(argv)
    serve(*deployments, limit=limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
