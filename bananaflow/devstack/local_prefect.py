"""A local Prefect server for the demo and for users without one.

Prefect's ephemeral mode keeps nothing once the flow process exits, so a run a person wants
to look at in the UI needs a real server.
This starts ``prefect server start`` as a child process (no Prefect import here: the engine
stays Prefect-free), waits for its health endpoint, and records its pid so a later
``bananaflow down`` can stop it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bananaflow.devstack.processes import stop_process
from bananaflow.errors import ConfigurationError


def server_env(home: Path) -> dict[str, str]:
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
        "DO_NOT_TRACK": "1",
    }


def is_healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def ensure_server(
    home: Path,
    host: str = "127.0.0.1",
    port: int = 4200,
    wait_s: float = 90.0,
    extra_env: dict[str, str] | None = None,
) -> str:
    """Return the API URL of a healthy server on host:port, starting one if none answers.

    ``extra_env`` configures a server this call starts (e.g. PostgreSQL and Redis settings
    for the scaled setup); it does not change one that is already running.
    """
    api_url = f"http://{host}:{port}/api"
    if is_healthy(api_url):
        return api_url
    home.mkdir(parents=True, exist_ok=True)
    log = open(home / "server.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
        # the UI asks the browser to call this URL; left alone it says port 4200 whatever --port is
        env={**os.environ, **server_env(home), "PREFECT_UI_API_URL": api_url, **(extra_env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    (home / "server.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (home / "server.log").read_text(errors="replace")[-1500:]
            raise ConfigurationError(f"the Prefect server exited with code {proc.returncode}:\n{tail}")
        if is_healthy(api_url):
            return api_url
        time.sleep(0.5)
    raise ConfigurationError(f"the Prefect server did not answer on {api_url} within {wait_s:.0f} s; see {home / 'server.log'}")


def stop_server(home: Path, wait_s: float = 20.0) -> bool:
    """Stop a server this module started (by its recorded pid). Returns whether one was running."""
    pid_file = home / "server.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().strip() or 0)
    pid_file.unlink()
    return stop_process(pid, wait_s) if pid else False


def ui_url(api_url: str) -> str:
    return api_url.rstrip("/").removesuffix("/api")
