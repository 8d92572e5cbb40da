"""Fixtures for every test."""
from __future__ import annotations

from collections.abc import Iterator

import pytest


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
