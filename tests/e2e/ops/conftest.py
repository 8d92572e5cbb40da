"""Real parts for the operations tests: a started ``prefect server start`` (UI, triggers and
scheduler services on, unlike the test harness), process workers polling a work pool, the
deployments of deployments/prefect.yaml, SeaweedFS and the simulator.

Everything binds free ports on 127.0.0.1 and is stopped at the end of the session.
"""
from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydantic import SecretStr

from bananaflow.devstack.local_prefect import ensure_server, server_env, stop_server
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer
from tests.e2e.conftest import TEST_API_KEY, prefect_calls_go_to

PROVIDER_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "BANANAFLOW_PROVIDER",
                 "BANANAFLOW_AUTH_STYLE", "GOOGLE_GEMINI_BASE_URL", "PREFECT_API_URL", "PREFECT_PROFILE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_prefect_server(home: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """``prefect server start`` on a free port; this process's calls still go where they went."""
    api_url = ensure_server(home, port=free_port(), wait_s=150, extra_env=extra_env)
    try:
        yield api_url
        from prefect.logging.handlers import APILogHandler

        APILogHandler().flush()  # send this process's last run logs before the server goes
    finally:
        stop_server(home)


@contextmanager
def started_prefect_server(home: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """``prefect server start`` on a free port, with its API URL set for this process."""
    with running_prefect_server(home, extra_env) as api_url, prefect_calls_go_to(api_url):
        yield api_url


class OpsStack:
    """The session's ops server, S3, simulator and the environment a subprocess needs to join them."""

    def __init__(self, api_url: str, home: Path, s3, simulator: SimulatorServer, spool: Path) -> None:  # noqa: ANN001
        self.api_url = api_url
        self.ui_url = api_url.removesuffix("/api")
        self.s3 = s3
        self.simulator = simulator
        base = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARS}
        self.env = {
            **base, **server_env(home), **s3.env(), "PREFECT_API_URL": api_url, "GEMINI_API_KEY": TEST_API_KEY,
            "GOOGLE_GEMINI_BASE_URL": simulator.base_url, "BANANAFLOW_SPOOL_DIR": str(spool),
            "PREFECT_LOGGING_LEVEL": "INFO",
            # deployment runs read catalogs only from allowed roots: the tests' own temporary folders
            "BANANAFLOW_CATALOG_ROOTS": str(spool.parent),
        }

    def save_blocks(self, bucket: str, prefix: str = "bananaflow", max_in_flight: int = 4) -> None:
        """The three blocks the deployments name, pointing at this module's parts."""
        from bananaflow_prefect.blocks import GenerationLimits, ImageProviderBlock, register_all
        from bananaflow_prefect.blocks.from_env import LIMITS_BLOCK, PROVIDER_BLOCK, STORE_BLOCK, store_block_from_env

        register_all()
        ImageProviderBlock(kind="gemini", base_url=self.simulator.base_url, api_key=SecretStr(TEST_API_KEY)).save(
            PROVIDER_BLOCK, overwrite=True
        )
        store_block_from_env(bucket, prefix, self.s3.env()).save(STORE_BLOCK, overwrite=True)
        GenerationLimits(max_in_flight=max_in_flight).save(LIMITS_BLOCK, overwrite=True)


@pytest.fixture(scope="session")
def ops_stack(tmp_path_factory, s3_server) -> Iterator[OpsStack]:
    """One server for the session (per pytest-xdist worker); ``ops_server_answers_this_module``
    points this process at it for the modules that use it."""
    home = tmp_path_factory.mktemp("prefect-home")
    with SimulatorServer(SimulatorConfig(latency_s=(0.05, 0.15))) as sim:
        with running_prefect_server(home) as api_url:
            yield OpsStack(api_url, home, s3_server, sim, tmp_path_factory.mktemp("spool"))


@pytest.fixture(scope="module", autouse=True)
def ops_server_answers_this_module(request: pytest.FixtureRequest) -> Iterator[None]:
    """In a module whose tests use ``ops_stack``, this process's Prefect calls (its flows,
    block saves, clients, module fixtures included) go to that server, and back when the
    module ends. Set for the whole session instead, it would answer whichever module ran
    next, e2e modules on the test harness included: pytest-xdist runs modules in any order."""
    module_items = [item for item in request.session.items if getattr(item, "module", None) is request.module]
    if not any("ops_stack" in item.fixturenames for item in module_items):
        yield
        return
    with prefect_calls_go_to(request.getfixturevalue("ops_stack").api_url):
        yield


def wait_until(predicate: Callable[[], object], timeout_s: float, what: str, poll_s: float = 0.5):  # noqa: ANN201
    """Poll ``predicate`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


INSTALL_BROWSER = Path(__file__).resolve().parents[3] / "tools" / "install-browser.sh"


@pytest.fixture(scope="session")
def chromium():
    """Headless Debian Chromium driven by chromedriver (Selenium). Installs the packages
    with tools/install-browser.sh when they are missing; skips only where that cannot work
    (no apt-get, not root), and says so."""
    import shutil
    import subprocess

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        subprocess.run(["sh", str(INSTALL_BROWSER)], check=False, timeout=900)
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver):
        if shutil.which("apt-get") and os.geteuid() == 0:
            pytest.fail("apt-get could not install chromium + chromium-driver; see tools/install-browser.sh")
        pytest.skip("no chromium/chromedriver and no way to install them here (needs apt-get as root): "
                    "apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000",
                "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture(autouse=True)
def _browser_left_on_a_blank_page(request):
    """The session's browser leaves the Prefect UI after each test: a UI page left open keeps
    polling and rendering (a core's worth of software rendering) through every later module."""
    yield
    if "chromium" in request.fixturenames:
        request.getfixturevalue("chromium").get("about:blank")


#: The scaled server's messaging gets a Redis database of its own, emptied first (default 12).
PREFECT_REDIS_URL = os.environ.get("BANANAFLOW_TEST_PREFECT_REDIS_URL", "redis://127.0.0.1:6379/12")
#: The workers' shared meters (namespaced keys in the meter tests' database).
LIMITS_REDIS_URL = os.environ.get("BANANAFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


class ScaledServices:
    """A fresh PostgreSQL database and an empty Redis database for one scaled Prefect server."""

    def __init__(self) -> None:
        import uuid

        self.database = f"bananaflow_test_{uuid.uuid4().hex[:8]}"
        self.database_url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.database}"
        self.prefect_redis_url = PREFECT_REDIS_URL
        #: what a worker needs to meter with the other workers (and with no one else)
        self.meters_env = {"BANANAFLOW_REDIS_URL": LIMITS_REDIS_URL,
                           "BANANAFLOW_REDIS_NAMESPACE": f"bftest-{uuid.uuid4().hex[:8]}"}

    @property
    def server_env(self) -> dict[str, str]:
        from bananaflow_prefect.deployments.local_stack import scaled_server_env

        return scaled_server_env(self.database_url, self.prefect_redis_url)

    def count(self, sql: str) -> int:
        """One number from the server's database, e.g. how many flow runs it recorded."""
        return int(self._on(self.database, lambda conn: conn.fetchval(sql)))

    def drop_database(self) -> None:
        self._on("postgres", lambda conn: conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))

    @staticmethod
    def _on(database: str, query):  # noqa: ANN001, ANN205 (an asyncpg call and its result)
        import asyncio

        import asyncpg

        async def run():  # noqa: ANN202
            conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database=database)
            try:
                return await query(conn)
            finally:
                await conn.close()

        return asyncio.run(run())


@pytest.fixture(scope="module")
def scaled_services(request: pytest.FixtureRequest) -> Iterator[ScaledServices]:
    """PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379, as this machine kind and CI
    run them; the database is dropped afterwards. Their modules take turns (SHARED_QUEUES)."""
    import asyncpg
    import redis

    from bananaflow_prefect.deployments.local_stack import ensure_database
    from tests.conftest import SHARED_QUEUES

    module = request.node.nodeid.split("::")[0]
    if SHARED_QUEUES.get(module) != "redis-postgres":
        pytest.fail(f"{module} empties Redis database {PREFECT_REDIS_URL.rsplit('/', 1)[1]} for its server: add it to "
                    "SHARED_QUEUES in tests/conftest.py, so pytest-xdist runs it after the other modules that do, not beside them")
    services = ScaledServices()
    try:
        ensure_database(services.database_url)
        redis.Redis.from_url(services.prefect_redis_url).flushdb()
    except (OSError, asyncpg.PostgresError, redis.RedisError) as exc:
        pytest.skip(f"the scaled server needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379: {exc}")
    try:
        yield services
    finally:
        services.drop_database()
