"""How ``pytest -n 2 --dist loadfile`` (pytest-xdist, as ``make test`` runs it) shares the
suite between worker processes.

Each test module runs whole on one worker, so a module's fixtures (a server, a finished
run) start once; session fixtures (Prefect server, S3, simulator, browser) start once per
worker that needs them. Modules that use the same state outside the test processes wait
for each other on one worker: see ``SHARED_QUEUES``.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

#: module -> a queue name; modules with the same queue run on one worker, one after another
SHARED_QUEUES = {
    # a Prefect server on PostgreSQL with its messaging in Redis database 12, emptied first
    "tests/e2e/ops/test_scale_out.py": "redis-postgres",
    "tests/e2e/ops/test_up_scaled.py": "redis-postgres",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):  # noqa: ANN001, ANN201 (xdist's types)
    """``--dist loadfile`` with ``SHARED_QUEUES``: whole modules, queued modules together.

    Modules go out in the order collected (end-to-end modules, the long ones, before the
    many short unit modules that even out the end), not by how many tests each has, and the
    queues first of all: they are the longest, and started late they would end last."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return SHARED_QUEUES.get(module, module)

        def _assign_work_unit(self, node) -> None:  # noqa: ANN001 (xdist's WorkerController)
            for queue in set(SHARED_QUEUES.values()) & set(self.workqueue):
                self.workqueue.move_to_end(queue, last=False)
            super()._assign_work_unit(node)

    config.option.loadscopereorder = False
    return ModuleScheduling(config, log)


@pytest.fixture(scope="session", autouse=True)
def home_of_this_test_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A HOME of its own for each test process (each pytest-xdist worker) and for the
    processes it starts. Runs keep state under ~/.cache/bananaflow (the default spool, and
    rate limits learned from 429s, keyed by the provider's host:port), which would be shared
    with the other worker, with another checkout testing at the same time and with the
    user's own runs: a limit learned from one simulator applies to any later simulator that
    is given the same port, and one run's spooled images are uploaded by the next run on
    the same bucket name."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        yield home


@pytest.fixture(autouse=True)
def secrets_registered_by_this_test_are_forgotten_after_it() -> Iterator[None]:
    """``bananaflow.secrets`` masks every key registered in the process from then on, and
    every start and end of 8 or more characters of each. One test's service-account JSON key
    (2,000 characters) made that pattern 4.6 MB for every test after it in the process: each
    log line took ~10 ms to mask and each new key seconds to register (10-s unit tests after
    the Vertex tests; test_secrets, run after them, hit the 300-s timeout). Keys registered
    by session and module fixtures stay: they were registered before this test began."""
    from bananaflow import secrets

    with secrets._lock:
        known, pattern = set(secrets._known), secrets._pattern
    yield
    with secrets._lock:
        secrets._known.clear()
        secrets._known.update(known)
        secrets._pattern = pattern
