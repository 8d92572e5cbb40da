"""What a benchmark starts: the simulator in its own process, and a Prefect server with
SeaweedFS S3 for runs of the whole flow. One copy, shared by every script in ``bench/``."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.request import Request, urlopen

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bananaflow.devstack.local_prefect import ensure_server, server_env, stop_server  # noqa: E402
from bananaflow.devstack.local_s3 import LocalS3Server  # noqa: E402

PY = sys.executable
BANANAFLOW = str(Path(PY).with_name("bananaflow"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Simulator:
    """The simulator as its own process (its CPU and memory are not any engine's)."""

    def __init__(self, *options: str) -> None:
        self.proc = subprocess.Popen([PY, "-m", "bananaflow.testing.simulator.cli", "--port", "0", *options],
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            self.stop()
            raise SystemExit("the simulator did not start")

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, path: str, method: str = "GET") -> dict:
        with urlopen(Request(self.base_url + path, method=method), timeout=60) as resp:
            return json.loads(resp.read())

    def reset(self) -> None:
        self._call("/_simulator/reset", "POST")

    def stats(self) -> dict:
        return self._call("/_simulator/stats")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def flow_stack(name: str) -> Iterator[tuple[Path, dict[str, str], str]]:
    """A started Prefect server and SeaweedFS S3 in a fresh state folder, stopped after:
    ``(state folder, the environment a ``bananaflow run`` needs there, the API URL)``."""
    state = Path(tempfile.mkdtemp(prefix=f"bananaflow-{name}-"))
    home = state / "prefect"
    api_url = ensure_server(home, port=free_port(), wait_s=150)
    try:
        with LocalS3Server(state / "s3") as s3:
            yield state, {**os.environ, **s3.env(), **server_env(home), "PREFECT_API_URL": api_url,
                          "GEMINI_API_KEY": "bench-key-for-the-simulator", "BANANAFLOW_SPOOL_DIR": str(state / "spool"),
                          "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING"}, api_url
    finally:
        stop_server(home)
