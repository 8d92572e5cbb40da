"""Real parts for end-to-end tests: a Prefect server (a real one, started by Prefect's test
harness), SeaweedFS ``weed mini`` and the Cloud Storage emulator on 127.0.0.1 and the
simulator's HTTP server."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bananaflow.devstack.local_gcs import LocalGcsServer
from bananaflow.devstack.local_s3 import LocalS3Server
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer

TEST_API_KEY = "FAKE-TEST-e2e-key-0123456789abcdefghijkl"


def send_pending_prefect_events() -> None:
    """Send this process's queued Prefect events and logs and stop the workers that send them.

    One events worker serves the whole process and stays bound to the server that was
    current when it started, and Prefect 3 records task runs from those events: after a
    switch to another server, the next event starts a worker bound to that one."""
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=30)


@contextmanager
def prefect_calls_go_to(api_url: str) -> Iterator[str]:
    """This process's Prefect calls (flows, task-run events, blocks, clients) go to
    ``api_url`` until exit, then back to where they went before."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    send_pending_prefect_events()
    try:
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            yield api_url
    finally:
        send_pending_prefect_events()


@pytest.fixture(scope="module", autouse=True)
def prefect_sends_nothing_after_this_module() -> Iterator[None]:
    """This module's last Prefect logs and events are sent before the next module starts.
    Prefect sends them in batches from its own thread, up to seconds later: into whatever
    test the worker runs next, e.g. a unit test that refuses every connection the process
    opens and counts them."""
    yield
    send_pending_prefect_events()


@pytest.fixture(scope="session")
def prefect_api():
    """A real Prefect API server (subprocess, temporary SQLite) for the whole session (per
    pytest-xdist worker); modules that use another server switch to it and back."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        send_pending_prefect_events()  # none of them for a server started before this one
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    with LocalS3Server(tmp_path_factory.mktemp("weed")) as server:
        yield server


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory):
    """The Cloud Storage emulator for the whole session (per pytest-xdist worker), objects
    on disk so a test may stop and start it; reach it with ``gcs_server.client()``."""
    with LocalGcsServer(tmp_path_factory.mktemp("gcs")) as server:
        yield server


@pytest.fixture
def gcs_env(gcs_server, monkeypatch):
    """STORAGE_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT point google-cloud-storage at the emulator."""
    for key, value in gcs_server.env().items():
        monkeypatch.setenv(key, value)
    return gcs_server


@pytest.fixture
def simulator():
    with SimulatorServer(SimulatorConfig(latency_s=(0.05, 0.15))) as sim:
        yield sim


@pytest.fixture
def provider_env(simulator, monkeypatch, tmp_path):
    monkeypatch.setenv("GEMINI_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", simulator.base_url)
    monkeypatch.setenv("BANANAFLOW_SPOOL_DIR", str(tmp_path / "spool"))
    for var in ("GOOGLE_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "BANANAFLOW_PROVIDER", "BANANAFLOW_AUTH_STYLE"):
        monkeypatch.delenv(var, raising=False)
    return simulator


def write_catalog(path: Path, rows: list[dict[str, str]]) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def products(n: int, prefix: str = "SKU") -> list[dict[str, str]]:
    colours = ["red", "blue", "green", "black", "white", "yellow"]
    return [
        {
            "sku": f"{prefix}-{i:03d}",
            "title": f"Ceramic mug model {prefix}{i:03d}",
            "color": colours[i % len(colours)],
            "material": "stoneware",
        }
        for i in range(n)
    ]
