"""``SimulatorServer``: a real HTTP server on 127.0.0.1, run in a background thread.

A real socket (not an in-process transport) is the point: clients are tested with their
own connection pools, timeouts and retries, exactly as they will talk to Google.
"""
from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from bananaflow.testing.simulator.app import build_app
from bananaflow.testing.simulator.config import SimulatorConfig
from bananaflow.testing.simulator.engine import SimulatorEngine

_START_TIMEOUT = 10.0


class SimulatorServer:
    """Start with ``with SimulatorServer(cfg) as sim:`` (or ``start()``/``stop()``)."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self._engine = SimulatorEngine(config or SimulatorConfig())
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; only known once started."""
        if self._port is None:
            raise RuntimeError("the simulator is not running")
        return f"http://{self._engine.config.host}:{self._port}"

    @property
    def config(self) -> SimulatorConfig:
        return self._engine.config

    def start(self) -> SimulatorServer:
        """Bind the port (0 picks a free one), serve in a thread, return once ready."""
        config = self._engine.config
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((config.host, config.port))
        self._port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(
            build_app(self._engine), log_level="warning", access_log=False,
            lifespan="off", timeout_graceful_shutdown=1,
        ))
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                        name=f"bananaflow-simulator-{self._port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the simulator did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=_START_TIMEOUT)
        self._server = self._thread = None
        self._port = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def stats(self) -> dict[str, Any]:
        """Snapshot of the counters (see ``StatsRecorder.snapshot``). ``by_outcome`` words:
        ok, slow, wrong_size, off_white, bad_base64, no_image, thought_only, text_only, truncated_json,
        blocked, prompt_blocked, 429, 429_day, 429_zero, 500, 503, html_502, reset,
        400, 404, bad_key."""
        return self._engine.stats.snapshot()

    def batch_stats(self) -> dict[str, int]:
        """Batch-mode counters: ``batches_created``, ``files_uploaded``,
        ``files_downloaded``, ``batch_cancels``."""
        return self._engine.batches.counters()

    def oauth_stats(self) -> dict[str, int]:
        """Token endpoint counters: ``tokens_issued``, ``tokens_refused``."""
        return self._engine.oauth.counters()

    def judge_stats(self) -> dict[str, Any]:
        """Judge-call counters (kept apart from the image calls'): ``requests_total``,
        ``by_route``, ``by_outcome`` (ok, fenced, invalid_json, truncated, max_tokens, blocked,
        prompt_blocked, schema_violation, 429, 500, ...), ``in_flight``."""
        return self._engine.judge.stats.snapshot()

    def judge_log(self) -> list[dict[str, Any]]:
        """One dict per judge request, oldest first: route, model, ``images`` and their
        ``image_phashes`` (what the judge was shown), outcome, ``passed``, ``failed_checks``."""
        return self._engine.judge.stats.log()

    def request_log(self) -> list[dict[str, Any]]:
        """One dict per request to a generation route, oldest first."""
        return self._engine.stats.log()

    def reset(self) -> None:
        """Zero counters and log, and restart quota windows, script and seed."""
        self._engine.reset()

    def configure(self, **changes: Any) -> SimulatorConfig:
        """Change knobs for later requests (``host``/``port`` only take effect on restart)."""
        return self._engine.configure(**changes)
