"""Fixtures for every test."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


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
