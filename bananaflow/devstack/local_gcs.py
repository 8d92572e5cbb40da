"""A real Cloud Storage emulator on 127.0.0.1 for the demo and the tests.

``gcp-storage-emulator`` (pure Python, in a child process, objects in memory or under a
state dir) speaks Cloud Storage's JSON API; ``bananaflow.devstack.gcs_emulator`` adds the
``ifGenerationMatch`` preconditions it lacks. Google's own client reaches it through the
standard ``STORAGE_EMULATOR_HOST`` variable, which also makes it skip authentication, so
nothing bananaflow-specific is needed to point a run here::

    with LocalGcsServer() as gcs:
        gcs.create_bucket("shop")
        os.environ.update(gcs.env())   # STORAGE_EMULATOR_HOST, GOOGLE_CLOUD_PROJECT
        client = gcs.client()          # google.cloud.storage.Client, anonymous

Stopping the server and starting it again keeps its port (and, with a state dir, its
objects), so a test can take the store away mid-run and bring it back.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any

from bananaflow.devstack.processes import stop_process
from bananaflow.errors import ConfigurationError, StorageError

__all__ = ["HOST", "DEFAULT_PROJECT", "LocalGcsServer"]

HOST = "127.0.0.1"
DEFAULT_PROJECT = "bananaflow-local"
_PORT_RANGE = (20000, 32767)  # below the ephemeral range: a poll never connects to itself
_STATE_FILE = "gcs-server.json"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _pick_port() -> int:
    rng = random.Random()
    for _ in range(500):
        port = rng.randint(*_PORT_RANGE)
        if _port_free(port):
            return port
    raise StorageError("no free port for the local Cloud Storage emulator")


class LocalGcsServer:
    """The emulator in a child process; use as a context manager.

    ``state_dir`` keeps objects on disk (and the log); without it they live in memory and
    are gone once the server stops.
    """

    def __init__(
        self,
        state_dir: Path | str | None = None,
        *,
        port: int | None = None,
        project: str = DEFAULT_PROJECT,
        startup_timeout: float = 30.0,
    ) -> None:
        self.state_dir = Path(state_dir).resolve() if state_dir is not None else None
        self.project = project
        self.startup_timeout = startup_timeout
        self.port: int | None = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None

    def __repr__(self) -> str:
        return f"LocalGcsServer(port={self.port!r}, running={self.running})"

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise StorageError("local Cloud Storage emulator is not started")
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def env(self) -> dict[str, str]:
        """The standard variables that point google-cloud-storage (and bananaflow) here."""
        return {"STORAGE_EMULATOR_HOST": self.endpoint_url, "GOOGLE_CLOUD_PROJECT": self.project}

    def client(self) -> Any:
        """A ``google.cloud.storage.Client`` for this server: anonymous credentials, our project."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud.storage import Client

        return Client(
            project=self.project,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.endpoint_url},
        )

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` unless it exists."""
        from google.api_core import exceptions

        with contextlib.suppress(exceptions.Conflict):
            self.client().create_bucket(name)

    # -- process -----------------------------------------------------------------------
    def start(self, detach: bool = False) -> LocalGcsServer:
        """Start the emulator and return once it answers. A port given (or kept from an
        earlier start) must be free; otherwise a free one is picked, up to three tries.
        ``detach`` leaves it running after this process exits (``stop_detached`` ends it)."""
        if self.running:
            return self
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        fixed = self.port
        last: StorageError | None = None
        for _ in range(1 if fixed is not None else 3):
            if fixed is not None and not self._wait_port_free(fixed):
                raise ConfigurationError(f"Cloud Storage emulator port {fixed} is in use")
            self.port = fixed if fixed is not None else _pick_port()
            try:
                self._launch(detach)
                self._wait_ready()
                self._write_state(detach)
                return self
            except StorageError as exc:  # most often: the port was taken between pick and bind
                self._kill()
                last = exc
                if fixed is None:
                    self.port = None
        assert last is not None
        raise last

    @staticmethod
    def _wait_port_free(port: int, wait_s: float = 10.0) -> bool:
        deadline = time.monotonic() + wait_s
        while not _port_free(port):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def _launch(self, detach: bool) -> None:
        cmd = [sys.executable, "-m", "bananaflow.devstack.gcs_emulator", "--host", HOST, "--port", str(self.port)]
        if self.state_dir is not None:
            cmd += ["--data-dir", str(self.state_dir / "data")]
        log_target: Any = subprocess.DEVNULL
        if self.state_dir is not None:
            log_target = open(self.state_dir / "gcs.out", "ab")  # noqa: SIM115  # closed right below
        try:
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.state_dir or None,
                env={k: v for k, v in os.environ.items() if k != "STORAGE_EMULATOR_HOST"},
                stdin=subprocess.DEVNULL,
                stdout=log_target,
                stderr=subprocess.STDOUT,
                start_new_session=detach,
            )
        finally:
            if log_target is not subprocess.DEVNULL:
                log_target.close()
        if not detach:  # never leave an orphan emulator behind a crashed test run
            self._finalizer = weakref.finalize(self, stop_process, self._proc, 5.0, group=False)

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        error = "no answer"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise StorageError(f"Cloud Storage emulator exited with code {self._proc.returncode} before it answered")
            try:
                with urllib.request.urlopen(self.endpoint_url + "/", timeout=2) as resp:  # noqa: S310  # our own 127.0.0.1
                    if resp.status == 200:
                        return
            except (OSError, urllib.error.URLError) as exc:
                error = type(exc).__name__
            time.sleep(0.05)
        raise StorageError(
            f"Cloud Storage emulator at {self.endpoint_url} did not answer within {self.startup_timeout:.0f} s ({error})"
        )

    def _write_state(self, detach: bool) -> None:
        if self.state_dir is not None:
            state = {"pid": self.pid, "endpoint_url": self.endpoint_url, "project": self.project, "detached": detach}
            (self.state_dir / _STATE_FILE).write_text(json.dumps(state, indent=2), "utf-8")

    def _kill(self) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._proc is not None:
            stop_process(self._proc, 5.0, group=False)
            self._proc = None

    def stop(self) -> None:
        """SIGTERM and wait, then SIGKILL. Idempotent; the port is kept for a later ``start``."""
        self._kill()
        if self.state_dir is not None:
            (self.state_dir / _STATE_FILE).unlink(missing_ok=True)

    @staticmethod
    def read_state(state_dir: Path | str) -> dict[str, Any] | None:
        """What a (detached) server under ``state_dir`` recorded: pid, endpoint_url, project."""
        try:
            state = json.loads((Path(state_dir) / _STATE_FILE).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return state if isinstance(state, dict) else None

    @staticmethod
    def stop_detached(state_dir: Path | str) -> bool:
        """Stop a server started with ``detach=True`` from its state file; False if none runs."""
        state = LocalGcsServer.read_state(state_dir)
        (Path(state_dir) / _STATE_FILE).unlink(missing_ok=True)
        try:
            pid = int(state["pid"]) if state else 0
            if not pid or b"gcs_emulator" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return False  # gone, or the pid was reused by another process
        except (OSError, ValueError, TypeError, KeyError):
            return False
        return stop_process(pid, 5.0, group=False)

    def __enter__(self) -> LocalGcsServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
