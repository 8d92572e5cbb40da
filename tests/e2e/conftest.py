"""Real parts for end-to-end tests: a Prefect server (a real one, started by Prefect's test
harness), SeaweedFS ``weed mini`` on 127.0.0.1 and the simulator's HTTP server."""
from __future__ import annotations

from pathlib import Path

import pytest

from bananaflow.devstack.local_s3 import LocalS3Server
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer

TEST_API_KEY = "FAKE-TEST-e2e-key-0123456789abcdefghijkl"


@pytest.fixture(scope="session")
def prefect_api():
    """A real Prefect API server (subprocess, temporary SQLite) for the whole session."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
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
