"""Vertex AI: settings by google-genai's conventions, ADC tokens shared by a process, the
Vertex URL, Vertex's error shapes, all over real HTTP against the simulator's Vertex and
OAuth routes with a service account made here from a fresh RSA key."""
from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from bananaflow.errors import AuthError, ConfigurationError, RateLimited
from bananaflow.planning.mode import choose_mode
from bananaflow.providers import ImageRequest, make_provider
from bananaflow.providers.gcp_auth import forget_shared_tokens, shared_tokens
from bananaflow.providers.models import get_model
from bananaflow.providers.settings import ProviderSettings
from bananaflow.providers.vertex import VertexProvider
from bananaflow.secrets import Secret
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer
from tests.vertex_fixtures import PROJECT, SA_EMAIL, new_key, service_account_info, write_service_account

pytestmark = pytest.mark.e2e  # the OAuth and Vertex routes of a real simulator server: in `make test`, not `make test-fast`

PRO = "gemini-3-pro-image"
KEY_PRIVATE, KEY_PUBLIC = new_key()


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    config = SimulatorConfig(oauth_public_keys=(KEY_PUBLIC,), script={"busy": ["429"]}, script_retry_delay=0.05)
    with SimulatorServer(config) as server:
        yield server


@pytest.fixture
def vertex_env(sim: SimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    sim.reset()
    sim.configure(vertex_list_errors=False, vertex_denied_projects=(), oauth_public_keys=(KEY_PUBLIC,))
    forget_shared_tokens()
    key_file = write_service_account(tmp_path / "sa.json", KEY_PRIVATE, sim.base_url + "/token")
    env = {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_CLOUD_PROJECT": PROJECT,
           "GOOGLE_APPLICATION_CREDENTIALS": str(key_file), "GOOGLE_VERTEX_BASE_URL": sim.base_url}
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "BANANAFLOW_PROVIDER", "GOOGLE_CLOUD_LOCATION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env
    forget_shared_tokens()


def _settings(**changes: Any) -> ProviderSettings:
    from dataclasses import replace

    return replace(ProviderSettings.from_env(), timeout_s=5.0, **changes)


def _generate_many(settings: ProviderSettings, prompts: list[str]) -> list[Any]:
    async def go() -> list[Any]:
        providers = [make_provider(settings) for _ in range(2)]  # two providers, one process: one token
        try:
            return await asyncio.gather(
                *(providers[i % 2].generate(ImageRequest(p, PRO)) for i, p in enumerate(prompts)), return_exceptions=True
            )
        finally:
            for provider in providers:
                await provider.aclose()

    return asyncio.run(go())


def test_settings_follow_google_genai_names() -> None:
    env = {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_CLOUD_PROJECT": "p-1", "GEMINI_API_KEY": "unused-key-1234"}
    settings = ProviderSettings.from_env(env)
    assert (settings.kind, settings.project, settings.location) == ("vertex", "p-1", "global")
    assert settings.base_url == "https://aiplatform.googleapis.com" and settings.api_key is None
    regional = ProviderSettings.from_env({**env, "GOOGLE_CLOUD_LOCATION": "europe-west4"})
    assert regional.base_url == "https://europe-west4-aiplatform.googleapis.com"
    provider = VertexProvider(regional)
    assert provider.endpoint(PRO) == ("https://europe-west4-aiplatform.googleapis.com/v1/projects/p-1/locations/"
                                      "europe-west4/publishers/google/models/gemini-3-pro-image:generateContent")
    assert ProviderSettings.from_env({**env, "GOOGLE_CLOUD_LOCATION": "eu"}).base_url == "https://aiplatform.eu.rep.googleapis.com"
    relay = ProviderSettings.from_env({**env, "GOOGLE_VERTEX_BASE_URL": "https://gw.example/vertex/"})
    assert VertexProvider(relay).endpoint(PRO).startswith("https://gw.example/vertex/v1/projects/p-1/locations/global/")
    assert ProviderSettings.from_env({**env, "BANANAFLOW_PROVIDER": "vertex"}).kind == "vertex"


def test_missing_project_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="set GOOGLE_CLOUD_PROJECT"):
        ProviderSettings.from_env({"GOOGLE_GENAI_USE_VERTEXAI": "1"})
    key_file = write_service_account(tmp_path / "sa.json", KEY_PRIVATE, "https://oauth2.example/token", "from-file")
    settings = ProviderSettings.from_env({"GOOGLE_GENAI_USE_VERTEXAI": "1", "GOOGLE_APPLICATION_CREDENTIALS": str(key_file)})
    assert settings.project == "from-file"


def test_batch_mode_on_vertex_takes_only_the_models_vertex_batch_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BANANAFLOW_VERTEX_BATCH_LOCATION", raising=False)
    with pytest.raises(ConfigurationError, match="does not take gemini-3.1-flash-image; it takes ") as caught:
        choose_mode("batch", 10, provider_kind="vertex", models=("gemini-3.1-flash-image",))
    assert "\n" not in str(caught.value) and "gemini-3-pro-image" in str(caught.value)
    choice = choose_mode("batch", 10, provider_kind="vertex", models=(PRO,), location="global")
    assert choice.mode == "batch" and "us-central1" in choice.reason and "global" in choice.reason
    assert "europe-west4" in choose_mode("batch", 10, provider_kind="vertex", models=(PRO,),
                                         location="europe-west4").reason
    assert choose_mode("auto", 10_000, provider_kind="vertex", models=(PRO,)).mode == "batch"
    assert choose_mode("auto", 10_000, provider_kind="vertex", models=("gemini-3.1-flash-image",)).mode == "realtime"
    monkeypatch.setenv("BANANAFLOW_VERTEX_BATCH_LOCATION", "global")
    with pytest.raises(ConfigurationError, match="must be a region"):
        choose_mode("batch", 10, provider_kind="vertex", models=(PRO,), location="global")


def test_images_on_the_vertex_path_with_one_shared_token(sim: SimulatorServer, vertex_env: dict[str, str]) -> None:
    results = _generate_many(_settings(), [f"bag {i}" for i in range(6)])
    assert all(not isinstance(r, Exception) for r in results), results
    image = Image.open(io.BytesIO(results[0].data))
    assert image.size == get_model(PRO).expected_pixels("1:1", "1K") and results[0].cost_usd > 0
    assert sim.oauth_stats() == {"tokens_issued": 1, "tokens_refused": 0}
    routes = {r["route"] for r in sim.request_log()}
    assert routes == {"vertex.generateContent"}


def test_token_is_refreshed_before_it_expires(sim: SimulatorServer, vertex_env: dict[str, str]) -> None:
    settings = _settings()
    assert not any(isinstance(r, Exception) for r in _generate_many(settings, ["a", "b"]))
    tokens = shared_tokens(None)
    tokens._credentials.expiry = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=60)  # inside the margin
    assert not any(isinstance(r, Exception) for r in _generate_many(settings, ["c", "d", "e"]))
    assert sim.oauth_stats()["tokens_issued"] == 2 and tokens.fetches == 2


def test_a_revoked_token_is_replaced_once(sim: SimulatorServer, vertex_env: dict[str, str]) -> None:
    settings = _settings()
    assert not any(isinstance(r, Exception) for r in _generate_many(settings, ["a"]))
    sim._engine.oauth.revoke_all()
    assert not any(isinstance(r, Exception) for r in _generate_many(settings, ["b"]))
    assert sim.oauth_stats()["tokens_issued"] == 2
    assert [r["outcome"] for r in sim.request_log()] == ["ok", "bad_key", "ok"]


def test_requests_without_a_valid_bearer_token_get_401(sim: SimulatorServer, vertex_env: dict[str, str]) -> None:
    url = VertexProvider(_settings()).endpoint(PRO)
    body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    for headers in ({}, {"Authorization": "Bearer ya29.made-up"}, {"x-goog-api-key": "any"}):
        answer = httpx.post(url, json=body, headers=headers)
        assert answer.status_code == 401 and answer.json()["error"]["status"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("listed", [False, True])
def test_permission_denied_names_the_role_to_grant(sim: SimulatorServer, vertex_env: dict[str, str], listed: bool) -> None:
    sim.configure(vertex_denied_projects=(PROJECT,), vertex_list_errors=listed)
    [error] = _generate_many(_settings(), ["a"])
    assert isinstance(error, AuthError) and error.http_status == 403
    assert "roles/aiplatform.user" in error.message and f"serviceAccount:{SA_EMAIL}" in error.message
    assert KEY_PRIVATE.splitlines()[1] not in error.message


@pytest.mark.parametrize("listed", [False, True])
def test_dynamic_shared_quota_429(sim: SimulatorServer, vertex_env: dict[str, str], listed: bool) -> None:
    sim.configure(vertex_list_errors=listed)
    [error] = _generate_many(_settings(), ["busy"])
    assert isinstance(error, RateLimited) and error.quota_id is None and error.api_status == "RESOURCE_EXHAUSTED"
    assert "Dynamic Shared Quota" in error.message


def test_a_key_the_token_endpoint_does_not_know_is_an_auth_error(sim: SimulatorServer, vertex_env: dict[str, str],
                                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other_private, _ = new_key()
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS",
                       str(write_service_account(tmp_path / "other.json", other_private, sim.base_url + "/token")))
    [error] = _generate_many(_settings(), ["a"])
    assert isinstance(error, AuthError) and "Invalid JWT Signature" in error.message
    assert other_private.splitlines()[1] not in error.message
    assert sim.oauth_stats()["tokens_refused"] >= 1 and sim.request_log() == []


def test_credentials_given_as_json_like_a_gcp_credentials_block(sim: SimulatorServer, vertex_env: dict[str, str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    info = service_account_info(KEY_PRIVATE, sim.base_url + "/token")
    settings = _settings(gcp_credentials=Secret(json.dumps(info)))
    assert "PRIVATE" not in repr(settings)
    assert not any(isinstance(r, Exception) for r in _generate_many(settings, ["a", "b"]))
    assert sim.oauth_stats()["tokens_issued"] == 1


def test_google_genai_sdk_on_vertex_talks_to_the_simulator(sim: SimulatorServer, vertex_env: dict[str, str]) -> None:
    from google import genai
    from google.genai import types
    from google.oauth2 import service_account

    credentials = service_account.Credentials.from_service_account_file(
        vertex_env["GOOGLE_APPLICATION_CREDENTIALS"], scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    client = genai.Client(vertexai=True, project=PROJECT, location="global", credentials=credentials,
                          http_options=types.HttpOptions(base_url=sim.base_url))
    response = client.models.generate_content(
        model=PRO, contents="a leather bag",
        config=types.GenerateContentConfig(response_modalities=["IMAGE"],
                                           image_config=types.ImageConfig(aspect_ratio="4:5", image_size="1K")),
    )
    finals = [p for p in response.candidates[0].content.parts if p.inline_data is not None and not p.thought]
    assert Image.open(io.BytesIO(finals[0].inline_data.data)).size == get_model(PRO).expected_pixels("4:5", "1K")
    assert sim.request_log()[-1]["route"] == "vertex.generateContent"
    assert sim.oauth_stats()["tokens_issued"] == 1
    model = client.models.get(model=PRO)
    assert model.name and PRO in model.name


def test_the_simulators_vertex_batch_jobs_answer_like_vertex(sim: SimulatorServer, vertex_env: dict[str, str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """create -> find by display name -> cancel through ``VertexBatchAPI``; a job in ``global``
    and a model batch prediction does not take are refused with Vertex's 400."""
    import httpx

    from bananaflow.batch.gcs_staging import GcsStaging
    from bananaflow.batch.vertex_api import VertexBatchAPI
    from bananaflow.errors import InvalidRequest

    monkeypatch.delenv("BANANAFLOW_VERTEX_BATCH_LOCATION", raising=False)
    sim.configure(batch_turnaround_s=3600)
    api = VertexBatchAPI(_settings(), GcsStaging("gs://stage/p"))

    async def go() -> None:
        try:
            created = await api.create(PRO, "gs://stage/p/x/input.jsonl", "bananaflow-x")
            assert created.state == "JOB_STATE_PENDING" and not created.terminal
            assert created.name.startswith("projects/") and "/locations/us-central1/batchPredictionJobs/" in created.name
            assert created.name.split("/")[1] != PROJECT, "Google names jobs by project number"
            found = await api.find("bananaflow-x")
            assert found is not None and found.name == created.name
            assert await api.find("bananaflow-other") is None
            await api.cancel(created.name)
            cancelled = await api.get(created.name)
            assert cancelled.state == "JOB_STATE_CANCELLED" and cancelled.terminal and not cancelled.succeeded
            with pytest.raises(InvalidRequest, match="does not support batch prediction"):
                await api.create("gemini-3.1-flash-image", "gs://stage/p/y/input.jsonl", "bananaflow-y")
            token = await api.tokens.token()
            async with httpx.AsyncClient() as client:
                answer = await client.post(f"{sim.base_url}/v1/projects/{PROJECT}/locations/global/batchPredictionJobs",
                                           headers={"Authorization": f"Bearer {token}"}, json={})
            assert answer.status_code == 400 and "global" in answer.json()["error"]["message"]
        finally:
            await api.aclose()

    asyncio.run(go())
    assert sim.batch_stats()["batches_created"] == 1 and sim.batch_stats()["batch_cancels"] == 1
