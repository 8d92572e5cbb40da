"""`bananaflow blocks register` and `blocks create-from-env` against a real server."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import TEST_API_KEY

pytestmark = pytest.mark.e2e
BANANAFLOW = str(Path(sys.executable).parent / "bananaflow")


def test_blocks_created_from_the_environment_configure_the_engine(ops_stack):
    from bananaflow_prefect.blocks import GenerationLimits, ImageProviderBlock, ImageStoreBlock

    env = {**ops_stack.env, "BANANAFLOW_MAX_IN_FLIGHT": "6", "BANANAFLOW_RPM": "90"}
    register = subprocess.run([BANANAFLOW, "blocks", "register"], env=env, capture_output=True, text=True, timeout=120)
    assert register.returncode == 0, register.stderr[-1500:]
    assert "bananaflow-image-provider" in register.stdout
    create = subprocess.run(
        [BANANAFLOW, "blocks", "create-from-env", "--bucket", "ops-blocks", "--prefix", "shop"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert create.returncode == 0, create.stderr[-1500:]
    assert TEST_API_KEY not in create.stdout + create.stderr

    settings = ImageProviderBlock.load("bananaflow-provider").to_settings()
    assert settings.base_url == ops_stack.simulator.base_url and settings.api_key.reveal() == TEST_API_KEY
    store = ImageStoreBlock.load("bananaflow-store").to_store()
    assert (store.bucket, store.prefix, store.endpoint_url) == ("ops-blocks", "shop", ops_stack.s3.endpoint_url)
    store.ensure_bucket()  # the stored credentials work against the real server
    limits = GenerationLimits.load("bananaflow-limits")
    assert (limits.max_in_flight, limits.requests_per_minute) == (6, 90.0)

    # the server keeps the key encrypted and hands it out masked
    import httpx

    resp = httpx.post(f"{ops_stack.api_url}/block_documents/filter", json={"include_secrets": False}, timeout=30)
    assert TEST_API_KEY not in resp.text and ops_stack.s3.secret_key.reveal() not in resp.text
