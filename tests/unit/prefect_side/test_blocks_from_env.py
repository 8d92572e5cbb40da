from __future__ import annotations

import pytest

from bananaflow.errors import ConfigurationError
from bananaflow_prefect.blocks.from_env import limits_block_from_env, store_block_from_env


def test_store_block_takes_boto3s_standard_variables():
    block = store_block_from_env(
        "shop-images", "catalog",
        {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
         "AWS_SECRET_ACCESS_KEY": "very-secret"},
    )
    assert (block.bucket, block.prefix, block.endpoint_url, block.region) == (
        "shop-images", "catalog", "http://127.0.0.1:9000", "eu-west-1")
    assert block.secret_access_key.get_secret_value() == "very-secret"
    assert "very-secret" not in repr(block) and "very-secret" not in block.model_dump_json()


def test_limits_block_reads_numbers_and_names_a_bad_one():
    limits = limits_block_from_env({"BANANAFLOW_MAX_IN_FLIGHT": "12", "BANANAFLOW_RPM": "120"})
    assert limits.max_in_flight == 12 and limits.requests_per_minute == 120.0
    assert limits_block_from_env({}).max_in_flight == 8
    with pytest.raises(ConfigurationError, match="BANANAFLOW_RPM='fast'"):
        limits_block_from_env({"BANANAFLOW_RPM": "fast"})


def test_limits_split_between_worker_slots_stay_within_the_whole() -> None:
    from bananaflow_prefect.blocks.limits import GenerationLimits

    whole = GenerationLimits(max_in_flight=5, requests_per_minute=60, images_per_minute=30, requests_per_day=7,
                             spend_per_10min_usd=3.0, worker_slots=2, max_attempts=4)
    part = whole.split(2)
    assert (part.max_in_flight, part.requests_per_minute, part.images_per_minute, part.requests_per_day,
            part.spend_per_10min_usd) == (2, 30, 15, 3, 1.5)
    assert part.max_attempts == 4 and whole.max_in_flight == 5  # retries are per image; the block is unchanged
    assert GenerationLimits(max_in_flight=1).split(4).max_in_flight == 1  # never zero: every run can work
    assert whole.split(1) is whole


def test_no_worker_slots_means_no_guard_and_the_whole_limits() -> None:
    from bananaflow_prefect.blocks.limits import GenerationLimits
    from bananaflow_prefect.tasks.guard import worker_guard

    limits = GenerationLimits(max_in_flight=6)
    guard = worker_guard("bananaflow-limits", limits, environ={})
    assert guard.name is None and guard.limits is limits and not guard.split
    with guard.hold():  # nothing to acquire: runs at once, with no Prefect server
        assert guard.limits.max_in_flight == 6


def test_provider_block_from_a_vertex_environment(monkeypatch) -> None:
    from bananaflow_prefect.blocks import ImageProviderBlock

    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "BANANAFLOW_PROVIDER", "GOOGLE_VERTEX_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_CLOUD_PROJECT": "p1",
                        "GOOGLE_CLOUD_LOCATION": "us-central1"}.items():
        monkeypatch.setenv(name, value)
    block = ImageProviderBlock.from_env()
    settings = block.to_settings()
    assert (block.kind, block.api_key) == ("vertex", None)
    assert (settings.kind, settings.project, settings.location) == ("vertex", "p1", "us-central1")
    assert settings.base_url == "https://us-central1-aiplatform.googleapis.com"


def test_provider_block_with_an_empty_key_takes_the_key_from_the_environment(monkeypatch) -> None:
    from pydantic import SecretStr

    from bananaflow_prefect.blocks import ImageProviderBlock

    for name in ("GOOGLE_API_KEY", "BANANAFLOW_PROVIDER", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GEMINI_API_KEY", "key-from-env")
    for key in (None, SecretStr("")):  # an empty field was an AttributeError
        settings = ImageProviderBlock(kind="gemini", api_key=key).to_settings()
        assert settings.api_key is not None and settings.api_key.reveal() == "key-from-env"
    given = ImageProviderBlock(kind="openai", base_url="https://relay.example/v1", api_key=SecretStr("given")).to_settings()
    assert (given.base_url, given.api_key and given.api_key.reveal(), given.auth_style) == (
        "https://relay.example/v1", "given", "bearer")


def test_vertex_runs_use_the_adaptive_controller_unless_told_otherwise() -> None:
    from bananaflow.options import RunOptions
    from bananaflow_prefect.flows.configure import _limits

    assert _limits(RunOptions(), "vertex")[0].adaptive is True
    assert _limits(RunOptions(), "gemini")[0].adaptive is False
    off = RunOptions().with_changes(limits={"adaptive": False})
    assert _limits(off, "vertex")[0].adaptive is False
