"""`bananaflow doctor`: every check has a line and, when it fails, the fix; the exit code
says whether all passed; nothing printed carries a secret. Against the simulator's
metadata routes (AI Studio and Vertex AI) and mocked answers for the error classes."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bananaflow.cli.main import main
from bananaflow.providers.diagnose import probe_provider
from bananaflow.providers.gcp_auth import forget_shared_tokens
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import Secret
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer
from tests.vertex_fixtures import PROJECT, SA_EMAIL, new_key, write_service_account

KEY = "FAKE-TEST-doctor-0123456789abcdefghij"
PRIVATE, PUBLIC = new_key()


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(api_key=KEY, oauth_public_keys=(PUBLIC,))) as server:
        yield server


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY", "BANANAFLOW_PROVIDER", "BANANAFLOW_MODEL",
                 "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "PREFECT_API_URL",
                 "GOOGLE_APPLICATION_CREDENTIALS", "BANANAFLOW_REDIS_URL", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    forget_shared_tokens()
    return monkeypatch


def _doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["doctor", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def _line(out: str, name: str) -> str:
    return next(line for line in out.splitlines() if line[5:].startswith(name))


def test_ai_studio_setup_passes_the_provider_checks_and_names_the_missing_bucket(sim, clean_env, capsys) -> None:
    clean_env.setenv("GEMINI_API_KEY", KEY)
    clean_env.setenv("GOOGLE_GEMINI_BASE_URL", sim.base_url)
    code, out = _doctor(capsys)
    assert code == 1 and KEY not in out
    for name in ("provider", "model", "endpoint", "credential", "quota"):
        assert _line(out, name).startswith("ok"), out
    assert "models/gemini-3-pro-image is available" in _line(out, "credential")
    assert "gemini:127.0.0.1" in _line(out, "quota") and "/gemini-3-pro-image" in _line(out, "quota")
    assert _line(out, "bucket").startswith("FAIL") and "fix: pass --bucket" in out
    assert sim.request_log() == []  # no image made


def test_a_bad_key_and_a_retired_model_each_get_their_fix(sim, clean_env, capsys) -> None:
    clean_env.setenv("GEMINI_API_KEY", "FAKE-TEST-wrong-key-0123456789")
    clean_env.setenv("GOOGLE_GEMINI_BASE_URL", sim.base_url)
    code, out = _doctor(capsys, "--model", "gemini-3-pro-image-preview")
    assert code == 1 and "FAKE-TEST-wrong-key" not in out
    assert "has been shut down" in _line(out, "model") and "use gemini-3-pro-image" in out
    assert _line(out, "credential").startswith("FAIL") and "aistudio.google.com/apikey" in out


def test_vertex_setup_with_a_service_account_file(sim, clean_env, capsys, tmp_path: Path) -> None:
    key_file = write_service_account(tmp_path / "sa.json", PRIVATE, sim.base_url + "/token")
    for name, value in {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_CLOUD_PROJECT": PROJECT,
                        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file), "GOOGLE_VERTEX_BASE_URL": sim.base_url}.items():
        clean_env.setenv(name, value)
    code, out = _doctor(capsys)
    assert _line(out, "credential").startswith("ok") and "gemini-3-pro-image (countTokens) is available" in out
    assert f"project {PROJECT}, location global" in _line(out, "provider")
    assert "Dynamic Shared Quota" in _line(out, "quota")
    assert PRIVATE.splitlines()[1] not in out
    sim.configure(vertex_denied_projects=(PROJECT,))
    try:
        code, out = _doctor(capsys)
    finally:
        sim.configure(vertex_denied_projects=())
    assert code == 1 and "roles/aiplatform.user" in out and "PERMISSION_DENIED" in _line(out, "credential")
    assert f"projects/{PROJECT}/locations/global" in out  # says where permission is missing
    assert f"--member=serviceAccount:{SA_EMAIL}" in out


def _answer(status: int, body: object, content_type: str = "application/json") -> list:
    def handler(request: httpx.Request) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(status, content=raw, headers={"content-type": content_type})

    settings = ProviderSettings("gemini", "https://generativelanguage.googleapis.com", Secret(KEY), "header",
                                "gemini-3-pro-image")

    async def go() -> list:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await probe_provider(settings, "gemini-3-pro-image", client)

    return asyncio.run(go())


def _quota(quota_id: str, value: str = "10") -> dict:
    return {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "You exceeded your current quota",
                      "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                                   "violations": [{"quotaId": quota_id, "quotaValue": value}]}]}}


@pytest.mark.parametrize(("status", "body", "content_type", "fix"), [
    (429, _quota("GenerateRequestsPerMinutePerProjectPerModel"), "application/json", "per-minute limit"),
    (429, _quota("GenerateRequestsPerDayPerProjectPerModel"), "application/json", "per-day quota is used up"),
    (429, _quota("GenerateRequestsPerDayPerProjectPerModel", "0"), "application/json", "enable billing"),
    (403, {"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "User location is not supported"}},
     "application/json", "region is not supported"),
    (502, {"error": {"code": 502, "message": "upstream error"}}, "application/json", "relay or gateway"),
])
def test_error_classes_map_to_the_guides_fix(status: int, body: object, content_type: str, fix: str) -> None:
    endpoint, credential = _answer(status, body, content_type)
    assert endpoint.ok and not credential.ok and fix in credential.fix


def test_an_html_page_means_a_proxy_or_relay_is_in_the_way() -> None:
    [endpoint] = _answer(502, b"<html><body>502 Bad Gateway</body></html>", "text/html")
    assert not endpoint.ok and "HTML page" in endpoint.line and "proxy" in endpoint.fix


def test_vertex_on_google_cloud_takes_adc_from_the_metadata_server(sim, tmp_path: Path) -> None:
    """No key file at all: google-auth finds the metadata server (GCE_METADATA_HOST/IP, read
    when google-auth is imported, hence a fresh process) and doctor's credential check passes."""
    import os
    import subprocess
    import sys
    from urllib.parse import urlsplit

    host = urlsplit(sim.base_url).netloc
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "GEMINI_", "BANANAFLOW_", "GCE_"))}
    env.update(GOOGLE_GENAI_USE_VERTEXAI="true", GOOGLE_CLOUD_PROJECT="bananaflow-sim", GOOGLE_VERTEX_BASE_URL=sim.base_url,
               GCE_METADATA_HOST=host, GCE_METADATA_IP=host, CLOUDSDK_CONFIG=str(tmp_path / "no-gcloud"))
    sim.reset()
    result = subprocess.run([sys.executable, "-m", "bananaflow.cli.main", "doctor"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert _line(result.stdout, "credential").startswith("ok"), result.stdout + result.stderr
    assert sim.oauth_stats()["tokens_issued"] == 1


def test_unreachable_prefect_and_redis_each_fail_with_their_fix(sim, clean_env, capsys) -> None:
    clean_env.setenv("GEMINI_API_KEY", KEY)
    clean_env.setenv("GOOGLE_GEMINI_BASE_URL", sim.base_url)
    clean_env.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    clean_env.setenv("BANANAFLOW_REDIS_URL", "redis://:FAKE-TEST-redis-pass-0123@127.0.0.1:9/0")
    code, out = _doctor(capsys)
    assert code == 1 and "FAKE-TEST-redis-pass" not in out
    assert _line(out, "prefect").startswith("FAIL") and "prefect server start" in out
    assert _line(out, "redis").startswith("FAIL") and "redis://host:6379/0" in out


def test_a_relay_that_lists_no_models_is_not_a_failure(sim, clean_env, capsys) -> None:
    clean_env.setenv("BANANAFLOW_PROVIDER", "openai")
    clean_env.setenv("OPENAI_API_KEY", KEY)
    clean_env.setenv("OPENAI_BASE_URL", sim.base_url + "/v1")
    code, out = _doctor(capsys, "--bucket", "")
    assert _line(out, "credential").startswith("ok") and "does not list models" in out
    assert "openai:127.0.0.1" in _line(out, "quota")
