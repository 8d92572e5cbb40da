"""``bananaflow simulator``: run the simulator as its own process.

End-to-end tests and local demos run the pipeline in other processes (workers, a flow
server), which need a simulator at a fixed address; this prints the base URL once the
server accepts connections and serves until SIGINT/SIGTERM.
"""
from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from bananaflow.testing.simulator.config import SimulatorConfig
from bananaflow.testing.simulator.server import SimulatorServer


def _latency(text: str) -> tuple[float, float]:
    low, sep, high = text.partition("-")
    try:
        return float(low), float(high if sep else low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN-MAX seconds, e.g. 0.2-1.5, got {text!r}") from None


def _defect(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected TEXT=MODE[:KIND], e.g. 'model SKU7=once', got {text!r}")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bananaflow simulator",
                                     description="Local simulator of the Gemini image API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090, help="0 picks a free port")
    parser.add_argument("--latency", type=_latency, default=(0.0, 0.02), metavar="MIN-MAX",
                        help="uniform latency in seconds, e.g. 0.2-1.5")
    parser.add_argument("--rpm", type=int, help="requests per minute (sliding 60 s window)")
    parser.add_argument("--max-in-flight", type=int, help="concurrent requests allowed")
    parser.add_argument("--rpd", type=int, help="requests per day")
    parser.add_argument("--rate-500", type=float, default=0.0, help="share of requests answered 500")
    parser.add_argument("--rate-503", type=float, default=0.0, help="share of requests answered 503")
    parser.add_argument("--blocked-word", action="append", default=[], dest="blocked_words",
                        help="prompts containing it get an IMAGE_SAFETY block (repeatable)")
    parser.add_argument("--thought-images", type=int, default=1,
                        help="thought images before the final one in each answer (default: %(default)s)")
    parser.add_argument("--api-key", help="require this API key (default: accept any)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-turnaround", type=float, default=1.0, dest="batch_turnaround_s",
                        help="seconds from batch create to its end state (default: %(default)s)")
    parser.add_argument("--batch-outcome", default="succeeded", choices=("succeeded", "failed", "expired"),
                        help="end state batches reach (default: %(default)s)")
    gate = parser.add_argument_group("quality gate (docs/quality.md)")
    gate.add_argument("--defect", action="append", default=[], type=_defect, metavar="TEXT=MODE[:KIND]",
                      help="images whose prompt contains TEXT carry a visible defect: MODE once (until the request "
                           "carries corrections) or always; KIND garbled_text (default) or extra_object (repeatable)")
    gate.add_argument("--judge-rpm", type=int, dest="judge_requests_per_minute",
                      help="judge calls per minute (the judge model's own limit)")
    wire = parser.add_argument_group("real-wire shapes (see tests/fixtures/wire/)")
    wire.add_argument("--draft-style", default="flagged", choices=("flagged", "unflagged"),
                      help="drafts marked thought:true, or unflagged parts with a thoughtSignature")
    wire.add_argument("--usage-shape", default="full", choices=("full", "no_details", "omitted", "extra_text"),
                      help="usageMetadata in full, without candidatesTokensDetails, absent, or larger than its details")
    wire.add_argument("--usage-as-strings", action="store_true", help="token counts as JSON strings")
    wire.add_argument("--openai-no-retry-after", action="store_true",
                      help="OpenAI route: 429s without a Retry-After header (the delay only in the message)")
    wire.add_argument("--openai-strict", action="store_true",
                      help="OpenAI route: refuse response_format and other fields real gpt-image refuses")
    return parser


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """The ``SimulatorConfig`` the command-line options describe."""
    return SimulatorConfig(
        host=args.host, port=args.port, latency_s=args.latency,
        requests_per_minute=args.rpm, max_in_flight=args.max_in_flight, requests_per_day=args.rpd,
        rate_500=args.rate_500, rate_503=args.rate_503, blocked_words=tuple(args.blocked_words),
        api_key=args.api_key, seed=args.seed, thought_images=args.thought_images,
        batch_turnaround_s=args.batch_turnaround_s, batch_outcome=args.batch_outcome,
        draft_style=args.draft_style, usage_shape=args.usage_shape, usage_as_strings=args.usage_as_strings,
        openai_retry_after=not args.openai_no_retry_after, openai_strict=args.openai_strict,
        defects=dict(args.defect), judge_requests_per_minute=args.judge_requests_per_minute,
    )


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT or SIGTERM; 0 on a clean stop, 2 on bad options."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with SimulatorServer(config) as sim:
            print(sim.base_url, flush=True)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
