"""Configuration through Prefect blocks and relays, artifacts, and the key never leaking."""
from __future__ import annotations

import asyncio
import io
import logging

import pandas as pd
import pytest
from pydantic import SecretStr

from tests.e2e.conftest import TEST_API_KEY, products, write_catalog
from tests.e2e.test_catalog_flow import run, s3_client

pytestmark = pytest.mark.e2e


async def _artifacts(flow_run_id: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )


async def _flow_run_logs(flow_run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async with get_client() as client:
        logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs]


def test_progress_and_summary_artifacts_are_on_the_run(prefect_api, s3_env, provider_env, tmp_path):
    provider_env.configure(blocked_words=("forbidden",))
    rows = products(6, "ART")
    rows[2]["title"] = "forbidden widget"
    summary = run(catalog=str(write_catalog(tmp_path / "c.csv", rows)), bucket="e2e-art", concurrency=2)
    artifacts = {a.key: a for a in asyncio.run(_artifacts(summary["run_id"]))}
    assert artifacts["bananaflow-progress"].data == 100.0
    assert "6 of 6 images" in artifacts["bananaflow-progress"].description
    markdown = artifacts["bananaflow-summary"].data
    assert "| succeeded | 5 |" in markdown and "| blocked | 1 |" in markdown
    failures = artifacts["bananaflow-failures"].data
    assert "ART-002" in str(failures) and "ContentBlocked" in str(failures)


def test_blocks_configure_provider_and_store_without_environment(prefect_api, s3_env, provider_env, tmp_path, monkeypatch):
    from bananaflow_prefect.blocks import ImageProviderBlock, ImageStoreBlock, register_all

    register_all()
    ImageProviderBlock(kind="gemini", base_url=provider_env.base_url, api_key=SecretStr(TEST_API_KEY)).save(
        "e2e-provider", overwrite=True
    )
    ImageStoreBlock(
        bucket="e2e-blocks",
        prefix="from-block",
        endpoint_url=s3_env.endpoint_url,
        region="us-east-1",
        access_key_id=s3_env.access_key,
        secret_access_key=SecretStr(s3_env.secret_key.reveal()),
    ).save("e2e-store", overwrite=True)
    for var in ("GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    summary = run(
        catalog=str(write_catalog(tmp_path / "c.csv", products(3, "BLK"))),
        provider_block="e2e-provider",
        store_block="e2e-store",
    )
    assert summary["counts"] == {"succeeded": 3}
    assert summary["bucket"] == "e2e-blocks" and summary["prefix"] == "from-block"


def test_openai_compatible_relay(prefect_api, s3_env, provider_env, tmp_path, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.setenv("BANANAFLOW_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", provider_env.base_url + "/v1")
    summary = run(catalog=str(write_catalog(tmp_path / "c.csv", products(3, "OAI"))), bucket="e2e-openai")
    assert summary["counts"] == {"succeeded": 3}
    routes = {r["route"] for r in provider_env.request_log()}
    assert routes == {"images.generations"} or all("image" in r for r in routes)


def test_the_key_never_leaks_even_as_query_parameter(prefect_api, s3_env, provider_env, tmp_path, monkeypatch, caplog):
    """A relay that takes ?key=: faults on the way; the key appears nowhere we write."""
    sim = provider_env
    sim.configure(
        api_key=TEST_API_KEY,
        blocked_words=("forbidden",),
        script={
            "model SEC000": ["429", "ok"],
            "model SEC001": ["html_502", "500", "ok"],
            "model SEC002": ["reset", "ok"],
            "model SEC003": ["bad_base64", "truncated_json", "ok"],
        },
        script_retry_delay=0.2,
    )
    monkeypatch.setenv("BANANAFLOW_AUTH_STYLE", "query")
    caplog.set_level(logging.DEBUG)
    rows = products(6, "SEC")
    rows[4]["title"] = "forbidden thing"
    summary = run(catalog=str(write_catalog(tmp_path / "c.csv", rows)), bucket="e2e-secrets", concurrency=3)
    assert summary["counts"] == {"succeeded": 5, "blocked": 1}
    secret_s3 = s3_env.secret_key.reveal()

    places: dict[str, str] = {"caplog": caplog.text, "summary": repr(summary)}
    places["prefect logs"] = "\n".join(asyncio.run(_flow_run_logs(summary["run_id"])))
    places["artifacts"] = repr([(a.key, a.data, a.description) for a in asyncio.run(_artifacts(summary["run_id"]))])
    client = s3_client(s3_env)
    for uri in summary["manifest"].values():
        key = uri.removeprefix("s3://e2e-secrets/")
        places[key] = client.get_object(Bucket="e2e-secrets", Key=key)["Body"].read().decode("latin-1")
    for page in client.get_paginator("list_objects_v2").paginate(Bucket="e2e-secrets"):
        for obj in page.get("Contents", []):
            places["meta " + obj["Key"]] = repr(client.head_object(Bucket="e2e-secrets", Key=obj["Key"])["Metadata"])
    assert len(places) > 8
    for where, text in places.items():
        assert TEST_API_KEY not in text, f"API key leaked into {where}"
        assert secret_s3 not in text, f"S3 secret leaked into {where}"
    # the faults really happened: the 502 page and the 500 were retried
    frame = pd.read_csv(io.StringIO(places[summary["manifest"]["csv"].removeprefix("s3://e2e-secrets/")]), dtype=str)
    assert int(frame.loc[frame["sku"] == "SEC-001", "attempts"].iloc[0]) == 3


def test_the_provider_blocks_fallback_chain_is_used(prefect_api, s3_env, provider_env, tmp_path, monkeypatch):
    """A block's fallback_models take over when the main model fails: the manifest says which made it."""
    from bananaflow_prefect.blocks import GenerationLimits, ImageProviderBlock, register_all

    register_all()
    ImageProviderBlock(
        kind="gemini", base_url=provider_env.base_url, api_key=SecretStr(TEST_API_KEY),
        fallback_models=["gemini-3.1-flash-image"],
    ).save("e2e-fallback", overwrite=True)
    GenerationLimits(max_in_flight=2, max_attempts=1).save("e2e-one-try", overwrite=True)
    provider_env.configure(script={"model PBF000": ["503"]})
    monkeypatch.delenv("GEMINI_API_KEY")
    summary = run(
        catalog=str(write_catalog(tmp_path / "c.csv", products(2, "PBF"))), bucket="e2e-block-fallback",
        provider_block="e2e-fallback", limits_block="e2e-one-try",
    )
    assert summary["counts"] == {"succeeded": 2}
    client = s3_client(s3_env)
    key = summary["manifest"]["csv"].removeprefix("s3://e2e-block-fallback/")
    frame = pd.read_csv(io.BytesIO(client.get_object(Bucket="e2e-block-fallback", Key=key)["Body"].read()), dtype=str)
    models = dict(zip(frame["sku"], frame["model"]))
    assert models == {"PBF-000": "gemini-3.1-flash-image", "PBF-001": "gemini-3-pro-image"}
    assert summary["fallbacks"] == 1
    markdown = {a.key: a for a in asyncio.run(_artifacts(summary["run_id"]))}["bananaflow-summary"].data
    assert "made by a fallback model: 1" in markdown and "throttled (429/503) 1x" in markdown
