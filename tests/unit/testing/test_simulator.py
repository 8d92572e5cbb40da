"""The simulator against its own contract, over real HTTP with httpx."""
from __future__ import annotations

import asyncio
import base64
import io
import re
import signal
import subprocess
import sys
import time
from dataclasses import fields
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from bananaflow.providers.models import get_model
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer

PRO = "gemini-3-pro-image"
FLASH_31 = "gemini-3.1-flash-image"
FLASH_25 = "gemini-2.5-flash-image"
QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_DEFAULTS = {f.name: getattr(SimulatorConfig(), f.name) for f in fields(SimulatorConfig) if f.name not in ("host", "port")}


@pytest.fixture(scope="module")
def server() -> Any:
    with SimulatorServer(SimulatorConfig()) as running:
        yield running


@pytest.fixture
def sim(server: SimulatorServer) -> SimulatorServer:
    """The shared server with default knobs and zeroed counters, so tests stay independent
    without paying for a server start each."""
    server.configure(**_DEFAULTS)
    server.reset()
    return server


def body(prompt: str, ratio: str | None = "1:1", size: str | None = "1K", **generation: Any) -> dict[str, Any]:
    image_config = {k: v for k, v in (("aspectRatio", ratio), ("imageSize", size)) if v is not None}
    return {
        "contents": [{"role": "user", "parts": [{"text": prompt}]}],
        "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": image_config, **generation},
    }


def generate(sim: SimulatorServer, payload: dict[str, Any], model: str = PRO, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{sim.base_url}/v1beta/models/{model}:generateContent", json=payload, timeout=30, **kwargs)


def final_part(response: httpx.Response) -> dict[str, Any]:
    parts = response.json()["candidates"][0]["content"]["parts"]
    finals = [p for p in parts if "inlineData" in p and not p.get("thought")]
    assert len(finals) == 1
    return finals[0]


def decode(part: dict[str, Any]) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(part["inlineData"]["data"], validate=True)))


def detail(error: dict[str, Any], type_url: str) -> dict[str, Any] | None:
    return next((d for d in error["details"] if d["@type"] == type_url), None)


# --- images -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "ratio", "size"),
    [
        (PRO, "1:1", "1K"),
        (PRO, "16:9", "2K"),
        (PRO, "9:16", "4K"),
        (PRO, "21:9", "1K"),
        (PRO, "4:5", "2K"),
        (FLASH_31, "1:1", "512"),
        (FLASH_31, "4:1", "1K"),
        (FLASH_31, "1:8", "2K"),
        (FLASH_31, "16:9", "4K"),
        (FLASH_25, "3:2", None),
    ],
)
def test_final_image_has_the_models_exact_pixel_size(sim: SimulatorServer, model: str, ratio: str, size: str | None) -> None:
    response = generate(sim, body("a ceramic mug", ratio, size), model=model)
    assert response.status_code == 200
    image = decode(final_part(response))
    spec = get_model(model)
    assert image.size == spec.expected_pixels(ratio, size or spec.default_size)
    assert image.format == "PNG"


def test_image_is_a_product_shot_on_white(sim: SimulatorServer) -> None:
    pixels = np.asarray(decode(final_part(generate(sim, body("a sneaker", "4:3", "1K")))).convert("RGB"))
    height, width, _ = pixels.shape
    assert (pixels[0] == 255).all() and (pixels[-1] == 255).all()
    assert (pixels[:, 0] == 255).all() and (pixels[:, -1] == 255).all()
    product = np.argwhere((pixels < 250).any(axis=2))
    span_y, span_x = product.max(axis=0) - product.min(axis=0) + 1
    assert span_x / width == pytest.approx(0.88, abs=0.02)
    assert span_y / height == pytest.approx(0.88, abs=0.02)


def test_images_are_deterministic_per_prompt(sim: SimulatorServer) -> None:
    first = final_part(generate(sim, body("red kettle", "3:2", "1K")))["inlineData"]["data"]
    again = final_part(generate(sim, body("red kettle", "3:2", "1K")))["inlineData"]["data"]
    other = final_part(generate(sim, body("blue kettle", "3:2", "1K")))["inlineData"]["data"]
    assert first == again
    assert first != other


def test_jpeg_output_when_configured(sim: SimulatorServer) -> None:
    sim.configure(image_mime="image/jpeg")
    part = final_part(generate(sim, body("a watch")))
    assert part["inlineData"]["mimeType"] == "image/jpeg"
    assert decode(part).format == "JPEG"


# --- response shape -----------------------------------------------------------------------


def test_success_has_thought_parts_signature_and_usage(sim: SimulatorServer) -> None:
    sim.configure(thought_images=2)
    response = generate(sim, body("a lamp", "16:9", "4K"))
    payload = response.json()
    candidate = payload["candidates"][0]
    parts = candidate["content"]["parts"]
    assert candidate["finishReason"] == "STOP"
    assert parts[0]["thought"] is True and isinstance(parts[0]["text"], str)
    assert [p.get("thought") for p in parts[1:3]] == [True, True]
    assert all(decode(p).size[0] < 5504 for p in parts[1:3])
    assert "thoughtSignature" in parts[3] and "thought" not in parts[3]
    usage = payload["usageMetadata"]
    assert usage["candidatesTokensDetails"] == [{"modality": "IMAGE", "tokenCount": 2000}]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"] + usage["thoughtsTokenCount"]
    assert payload["modelVersion"] == PRO and payload["responseId"]


def test_reference_images_are_accepted_and_counted(sim: SimulatorServer) -> None:
    prompt = "x" * 40
    payload = body(prompt)
    reference = base64.b64encode(b"\xff\xd8\xff fake jpeg").decode()
    payload["contents"][0]["parts"] += [{"inlineData": {"mimeType": "image/jpeg", "data": reference}}] * 2
    usage = generate(sim, payload).json()["usageMetadata"]
    assert usage["promptTokenCount"] == 10 + 2 * 560
    assert sim.request_log()[-1]["reference_images"] == 2


def test_usage_counters_as_strings(sim: SimulatorServer) -> None:
    sim.configure(usage_as_strings=True)
    usage = generate(sim, body("a cup")).json()["usageMetadata"]
    assert usage["candidatesTokenCount"] == "1120"
    assert usage["candidatesTokensDetails"][0]["tokenCount"] == "1120"


def test_snake_case_request_is_accepted(sim: SimulatorServer) -> None:
    payload = {
        "contents": [{"parts": [{"text": "a hat"}]}],
        "generation_config": {"response_modalities": ["IMAGE"], "image_config": {"aspect_ratio": "2:3", "image_size": "2K"}},
    }
    assert decode(final_part(generate(sim, payload))).size == (1696, 2528)


def test_text_only_modalities_get_no_image(sim: SimulatorServer) -> None:
    payload = body("a hat")
    payload["generationConfig"]["responseModalities"] = ["TEXT"]
    parts = generate(sim, payload).json()["candidates"][0]["content"]["parts"]
    assert all("inlineData" not in p for p in parts)
    assert sim.stats()["by_outcome"] == {"text_only": 1}


# --- scripted outcomes --------------------------------------------------------------------


def _google_error(response: httpx.Response, code: int, status: str) -> dict[str, Any]:
    assert response.status_code == code
    error = response.json()["error"]
    assert error["code"] == code and error["status"] == status
    return error


def test_script_serves_outcomes_in_order_then_normal(sim: SimulatorServer) -> None:
    sim.configure(script={"SKU-7": ["500", "503", "ok"]})
    codes = [generate(sim, body("photo of SKU-7")).status_code for _ in range(4)]
    assert codes == [500, 503, 200, 200]
    assert generate(sim, body("SKU-8")).status_code == 200
    assert sim.stats()["by_outcome"] == {"500": 1, "503": 1, "ok": 3}


def test_scripted_server_errors_use_googles_envelope(sim: SimulatorServer) -> None:
    sim.configure(script={"p": ["500", "503"]})
    assert _google_error(generate(sim, body("p")), 500, "INTERNAL")["message"].startswith("An internal error")
    error = _google_error(generate(sim, body("p")), 503, "UNAVAILABLE")
    assert error["message"] == "The model is overloaded. Please try again later."


def test_scripted_429_per_minute_has_retry_info(sim: SimulatorServer) -> None:
    sim.configure(script={"p": ["429"]}, script_retry_delay=2.5)
    error = _google_error(generate(sim, body("p")), 429, "RESOURCE_EXHAUSTED")
    assert detail(error, QUOTA_FAILURE)["violations"][0]["quotaId"] == "GenerateRequestsPerMinutePerProjectPerModel"
    assert detail(error, RETRY_INFO)["retryDelay"] == "2.500000s"
    assert "Please retry in 2.5s" in error["message"]


def test_scripted_429_per_day_has_no_retry_info(sim: SimulatorServer) -> None:
    sim.configure(script={"p": ["429_day"]})
    error = _google_error(generate(sim, body("p")), 429, "RESOURCE_EXHAUSTED")
    assert detail(error, QUOTA_FAILURE)["violations"][0]["quotaId"] == "GenerateRequestsPerDayPerProjectPerModel"
    assert detail(error, RETRY_INFO) is None


def test_scripted_html_502(sim: SimulatorServer) -> None:
    sim.configure(script={"p": ["html_502"]})
    response = generate(sim, body("p"))
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "<html>" in response.text


def test_scripted_truncated_json(sim: SimulatorServer) -> None:
    sim.configure(script={"p": ["truncated_json"]})
    response = generate(sim, body("p"))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        response.json()


def test_scripted_slow(sim: SimulatorServer) -> None:
    sim.configure(script={"p": ["slow"]}, slow_seconds=0.3)
    started = time.monotonic()
    response = generate(sim, body("p"))
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200 and decode(final_part(response)).size == (1024, 1024)
    assert sim.stats()["images_served"] == 1


def test_scripted_no_image(sim: SimulatorServer) -> None:
    sim.configure(script={"p": ["no_image"]})
    candidate = generate(sim, body("p")).json()["candidates"][0]
    assert candidate["finishReason"] == "NO_IMAGE"
    assert [set(p) for p in candidate["content"]["parts"]] == [{"text"}]


def test_scripted_thought_only(sim: SimulatorServer) -> None:
    sim.configure(script={"p": ["thought_only"]})
    parts = generate(sim, body("p")).json()["candidates"][0]["content"]["parts"]
    assert parts and all(p.get("thought") for p in parts)
    assert sim.stats()["images_served"] == 0


def test_scripted_wrong_size(sim: SimulatorServer) -> None:
    sim.configure(script={"p": ["wrong_size"]})
    assert decode(final_part(generate(sim, body("p", "16:9", "2K")))).size != (2752, 1536)


def test_scripted_bad_base64(sim: SimulatorServer) -> None:
    sim.configure(script={"p": ["bad_base64"]})
    data = final_part(generate(sim, body("p")))["inlineData"]["data"]
    with pytest.raises(ValueError):
        base64.b64decode(data)


def test_scripted_reset_drops_the_connection(sim: SimulatorServer) -> None:
    sim.configure(script={"p": ["reset"]})
    with pytest.raises(httpx.TransportError):
        generate(sim, body("p"))
    assert generate(sim, body("p")).status_code == 200
    assert sim.request_log()[0]["outcome"] == "reset" and sim.request_log()[0]["http_status"] is None


def test_script_rejects_unknown_outcomes(sim: SimulatorServer) -> None:
    with pytest.raises(ValueError):
        sim.configure(script={"p": ["explode"]})
    with pytest.raises(TypeError):
        sim.configure(requests_per_hour=3)


# --- quotas and limits --------------------------------------------------------------------


def test_requests_per_minute(sim: SimulatorServer) -> None:
    sim.configure(requests_per_minute=3)
    codes = [generate(sim, body(f"item {i}")).status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]
    error = generate(sim, body("item 5")).json()["error"]
    assert detail(error, QUOTA_FAILURE)["violations"][0]["quotaValue"] == "3"
    delay = detail(error, RETRY_INFO)["retryDelay"]
    assert re.fullmatch(r"\d+\.\d{6}s", delay) and 55 < float(delay[:-1]) <= 60
    assert re.search(r"Please retry in \d+\.\ds\.", error["message"])
    stats = sim.stats()
    assert stats["by_outcome"] == {"ok": 3, "429": 2}
    assert stats["requests_total"] == 5 and stats["max_requests_in_any_60s_window"] == 5


def test_max_in_flight_rejects_the_excess(sim: SimulatorServer) -> None:
    sim.configure(max_in_flight=2, latency_s=(0.4, 0.4))

    async def burst() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            url = f"{sim.base_url}/v1beta/models/{PRO}:generateContent"
            responses = await asyncio.gather(*(client.post(url, json=body(f"p{i}")) for i in range(6)))
            return [r.status_code for r in responses]

    codes = asyncio.run(burst())
    assert sorted(codes) == [200, 200, 429, 429, 429, 429]
    stats = sim.stats()
    assert stats["max_in_flight_seen"] == 2 and stats["in_flight"] == 0


def test_requests_per_day(sim: SimulatorServer) -> None:
    sim.configure(requests_per_day=2)
    assert [generate(sim, body("p")).status_code for _ in range(2)] == [200, 200]
    error = _google_error(generate(sim, body("p")), 429, "RESOURCE_EXHAUSTED")
    assert detail(error, QUOTA_FAILURE)["violations"][0]["quotaId"] == "GenerateRequestsPerDayPerProjectPerModel"
    assert detail(error, RETRY_INFO) is None
    assert sim.stats()["by_outcome"]["429_day"] == 1


def test_quota_zero_model(sim: SimulatorServer) -> None:
    sim.configure(quota_zero_models=[PRO])
    error = _google_error(generate(sim, body("p")), 429, "RESOURCE_EXHAUSTED")
    assert "limit: 0" in error["message"]
    assert detail(error, QUOTA_FAILURE)["violations"][0]["quotaValue"] == "0"
    assert generate(sim, body("p"), model=FLASH_31).status_code == 200


def test_random_faults_follow_rates(sim: SimulatorServer) -> None:
    sim.configure(rate_503=1.0)
    assert generate(sim, body("p")).status_code == 503
    sim.configure(rate_503=0.0, rate_500=1.0)
    assert generate(sim, body("p")).status_code == 500


def test_blocked_words(sim: SimulatorServer) -> None:
    sim.configure(blocked_words=["weapon"], prompt_blocked_words=["forbidden"])
    image_blocked = generate(sim, body("a toy Weapon")).json()
    assert image_blocked["candidates"][0]["finishReason"] == "IMAGE_SAFETY"
    assert not image_blocked["candidates"][0].get("content", {}).get("parts")
    prompt_blocked = generate(sim, body("forbidden thing")).json()
    assert "candidates" not in prompt_blocked
    assert prompt_blocked["promptFeedback"]["blockReason"] == "PROHIBITED_CONTENT"
    assert sim.stats()["by_outcome"] == {"blocked": 1, "prompt_blocked": 1}


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gemini-3-pro-image-preview", "imagen-4.0"])
def test_unknown_or_retired_model_is_404(sim: SimulatorServer, model: str) -> None:
    error = _google_error(generate(sim, body("p"), model=model), 404, "NOT_FOUND")
    assert f"models/{model} is not found" in error["message"]
    assert isinstance(error["details"], list)


@pytest.mark.parametrize(
    ("model", "payload", "needle"),
    [
        (PRO, body("p", "7:3", "1K"), "aspect ratio"),
        (PRO, body("p", "4:1", "1K"), "aspect ratio"),
        (PRO, body("p", "1:1", "2k"), "uppercase"),
        (PRO, body("p", "1:1", "512"), "image size"),
        (PRO, body("p", candidateCount=2), "Multiple candidates is not enabled"),
        (PRO, body("p", aspectRatio="1:1"), 'Unknown name "aspectRatio"'),
        (PRO, {**body("p"), "prompt": "p"}, 'Unknown name "prompt"'),
        (PRO, {"contents": []}, "contents is not specified"),
        (FLASH_25, body("p", "1:1", "1K"), "image size is not supported"),
    ],
)
def test_invalid_requests_are_400(sim: SimulatorServer, model: str, payload: dict[str, Any], needle: str) -> None:
    error = _google_error(generate(sim, payload, model=model), 400, "INVALID_ARGUMENT")
    assert needle in error["message"]


def test_malformed_json_and_unknown_path(sim: SimulatorServer) -> None:
    response = httpx.post(f"{sim.base_url}/v1beta/models/{PRO}:generateContent", content=b"{nope")
    _google_error(response, 400, "INVALID_ARGUMENT")
    _google_error(httpx.get(f"{sim.base_url}/v1beta/nothing"), 404, "NOT_FOUND")


def test_api_key_enforcement(sim: SimulatorServer) -> None:
    sim.configure(api_key="secret-key")
    url = f"{sim.base_url}/v1beta/models/{PRO}:generateContent"
    for kwargs in ({}, {"headers": {"x-goog-api-key": "wrong"}}):
        error = _google_error(httpx.post(url, json=body("p"), **kwargs), 400, "INVALID_ARGUMENT")
        assert error["message"] == "API key not valid. Please pass a valid API key."
        assert detail(error, "type.googleapis.com/google.rpc.ErrorInfo")["reason"] == "API_KEY_INVALID"
    for kwargs in (
        {"headers": {"x-goog-api-key": "secret-key"}},
        {"headers": {"Authorization": "Bearer secret-key"}},
        {"params": {"key": "secret-key"}},
    ):
        assert httpx.post(url, json=body("p"), timeout=30, **kwargs).status_code == 200
    assert sim.stats()["by_outcome"] == {"bad_key": 2, "ok": 3}


# --- OpenAI-compatible route --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/images/generations", "/v1beta/openai/images/generations"])
def test_openai_b64_json(sim: SimulatorServer, path: str) -> None:
    payload = {"model": PRO, "prompt": "a chair", "n": 1, "size": "1792x1024", "response_format": "b64_json"}
    response = httpx.post(sim.base_url + path, json=payload, headers={"Authorization": "Bearer k"}, timeout=30)
    assert response.status_code == 200
    result = response.json()
    assert isinstance(result["created"], int)
    image = Image.open(io.BytesIO(base64.b64decode(result["data"][0]["b64_json"])))
    assert image.size == get_model(PRO).expected_pixels("16:9", "1K")
    assert sim.stats()["by_route"] == {"images.generations": 1}


def test_openai_url_with_nonstandard_fields(sim: SimulatorServer) -> None:
    payload = {"model": FLASH_31, "prompt": "a chair", "response_format": "url", "aspect_ratio": "4:1", "image_size": "2K"}
    result = httpx.post(f"{sim.base_url}/v1/images/generations", json=payload, timeout=30).json()
    url = result["data"][0]["url"]
    assert url.startswith(f"{sim.base_url}/_simulator/files/")
    download = httpx.get(url)
    assert download.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(download.content)).size == get_model(FLASH_31).expected_pixels("4:1", "2K")


def test_openai_errors_use_openai_envelope(sim: SimulatorServer) -> None:
    sim.configure(script={"busy": ["429"]}, script_retry_delay=3.0)
    url = f"{sim.base_url}/v1/images/generations"
    limited = httpx.post(url, json={"model": PRO, "prompt": "busy"})
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert limited.headers["retry-after"] == "3"
    bad = httpx.post(url, json={"model": PRO, "prompt": "x", "aspect_ratio": "7:3"})
    assert bad.status_code == 400
    assert set(bad.json()["error"]) == {"message", "type", "param", "code"}
    assert bad.json()["error"]["param"] == "aspect_ratio"
    assert httpx.post(url, json={"model": PRO, "prompt": "x", "colour": "red"}).status_code == 400
    assert httpx.post(url, json={"model": "gemini-3-pro-image-preview", "prompt": "x"}).status_code == 404
    sim.configure(api_key="k")
    assert httpx.post(url, json={"model": PRO, "prompt": "x"}, headers={"x-goog-api-key": "k"}).status_code == 401


# --- stats, control endpoints, CLI --------------------------------------------------------


def test_request_log_and_http_control_endpoints(sim: SimulatorServer) -> None:
    generate(sim, body("logged prompt", "3:4", "2K"))
    entry = sim.request_log()[0]
    assert entry["route"] == "generateContent" and entry["model"] == PRO
    assert entry["outcome"] == "ok" and entry["http_status"] == 200
    assert entry["aspect_ratio"] == "3:4" and entry["image_size"] == "2K"
    assert len(entry["prompt_sha256"]) == 64 and entry["t_start"] <= entry["t_end"]
    remote = httpx.get(f"{sim.base_url}/_simulator/stats").json()
    assert remote["requests_total"] == 1 and remote["images_served"] == 1
    assert remote["request_log"][0]["prompt_sha256"] == entry["prompt_sha256"]
    assert httpx.post(f"{sim.base_url}/_simulator/reset").status_code == 200
    assert sim.stats()["requests_total"] == 0 and sim.request_log() == []


def test_cli_prints_url_and_stops_cleanly_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "from bananaflow.testing.simulator.cli import main; raise SystemExit(main())",
         "--port", "0", "--latency", "0-0.01", "--rpm", "5", "--blocked-word", "gun", "--seed", "3"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        base_url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)
        blocked = httpx.post(f"{base_url}/v1beta/models/{PRO}:generateContent", json=body("a gun"), timeout=30)
        assert blocked.json()["candidates"][0]["finishReason"] == "IMAGE_SAFETY"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
