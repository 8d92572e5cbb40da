"""``bananaflow`` command line.

The engine does not import Prefect; commands that run flows import them lazily
(``cli.launch``), so ``bananaflow simulator`` and friends start fast and work without a server.
Exit codes: 0 every item succeeded, already existed or was blocked by the provider's
safety filter; 1 some items failed or were deferred; 2 a usage or configuration error.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bananaflow.cli.arguments import ESTIMATE_OPTIONS, PROMPTS_OPTIONS, add_option_flags
from bananaflow.cli.commands import cmd_estimate, cmd_prompts, cmd_run
from bananaflow.cli.launch import EXIT_OK, EXIT_USAGE
from bananaflow.cli.malloc_arenas import limit_malloc_arenas
from bananaflow.errors import BananaflowError
from bananaflow.secrets import install_log_redaction


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bananaflow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="generate images for a catalog and land them in S3")
    run.add_argument("catalog", help="catalog file: CSV/TSV/JSONL/Parquet/XLSX, local path, s3:// or gs://bucket/key")
    run.add_argument("--no-progress", action="store_true", help="no progress bar (logs instead)")
    add_option_flags(run)  # every run option

    demo = sub.add_parser("demo", help="run the example catalog on the simulator, a local S3 server and Prefect")
    demo.add_argument("--catalog", default="examples/catalog.csv")
    demo.add_argument("--state-dir", default=".state", help="where local servers keep their data")
    demo.add_argument("--prefect-port", type=int, default=4200)
    demo.add_argument("--concurrency", type=int, default=8)
    demo.add_argument("--no-progress", action="store_true")
    demo.add_argument("--gcs", action="store_true", help="land the images in a Cloud Storage emulator instead of S3")

    prompts = sub.add_parser("prompts", help="preview rendered prompts, image count and list-price cost (no API calls)")
    prompts.add_argument("catalog", help="catalog file, local path, s3:// or gs://bucket/key")
    prompts.add_argument("--limit", type=int, default=20, help="prompts to print (default: %(default)s)")
    prompts.add_argument("--rejections", type=int, default=10, help="rejected rows to print (default: %(default)s)")
    add_option_flags(prompts, *PROMPTS_OPTIONS)

    est = sub.add_parser("estimate", help="images, cost and time for a catalog at your limits, before any call")
    est.add_argument("catalog", help="catalog file (as for run)")
    est.add_argument("--latency", type=float, default=15.0, help="mean seconds per image (default: %(default)s)")
    add_option_flags(est, *ESTIMATE_OPTIONS)

    down = sub.add_parser("down", help="stop what `up` or `demo` left running (workers, Prefect server)")
    down.add_argument("--state-dir", default=".state")

    from bananaflow.cli.ops import add_ops_commands

    add_ops_commands(sub)
    from bananaflow.cli.doctor import add_doctor_command

    add_doctor_command(sub)
    from bananaflow.cli.review import add_review_command

    add_review_command(sub)
    sim = sub.add_parser("simulator", help="serve the Nano Banana simulator", add_help=False)
    sim.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    limit_malloc_arenas()  # before any thread: a run's peak RSS stays flat (see ``cli.malloc_arenas``)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulator"]:
        from bananaflow.testing.simulator.cli import main as simulator_main

        return simulator_main(argv[1:])
    args = build_parser().parse_args(argv)
    install_log_redaction()
    from bananaflow.cli.console import err_console

    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "prompts":
            return cmd_prompts(args)
        if args.command == "estimate":
            return cmd_estimate(args)
        if args.command == "doctor":
            from bananaflow.cli.doctor import cmd_doctor

            return cmd_doctor(args)
        if args.command == "review":
            from bananaflow.cli.review import cmd_review

            return cmd_review(args)
        if args.command == "demo":
            from bananaflow.cli.demo import run_demo

            return run_demo(args)
        if args.command == "down":
            from bananaflow.cli.ops import stop_stack
            from bananaflow.devstack.local_prefect import stop_server

            if stop_stack(Path(args.state_dir)):
                print("stopped the workers and local services of `bananaflow up`")
            stopped = stop_server(Path(args.state_dir) / "prefect")
            print("stopped the local Prefect server" if stopped else "no local Prefect server was running")
            return EXIT_OK
        from bananaflow.cli.ops import run_ops_command

        code = run_ops_command(args)
        if code is not None:
            return code
    except BananaflowError as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        return EXIT_USAGE
    except KeyboardInterrupt:
        err_console.print("interrupted: images already stored are kept; run the same command again to finish")
        return 130
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
