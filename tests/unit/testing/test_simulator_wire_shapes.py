"""The simulator speaks what the wire corpus (``tests/fixtures/wire/``) shows, and the real
client reads each shape the way it reads the recorded body."""
from __future__ import annotations

import asyncio
from dataclasses import fields
from typing import Any

import httpx
import pytest

from bananaflow.errors import ProviderError, error_status, is_retryable
from bananaflow.providers import ImageRequest, make_provider
from bananaflow.providers.gemini import cost_of
from bananaflow.providers.models import get_model
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import Secret
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer
from bananaflow.testing.simulator.cli import build_parser, config_from_args

pytestmark = pytest.mark.e2e  # every fault shape through a real simulator server: in `make test`, not `make test-fast`

PRO = "gemini-3-pro-image"
_DEFAULTS = {f.name: getattr(SimulatorConfig(), f.name) for f in fields(SimulatorConfig) if f.name not in ("host", "port")}


@pytest.fixture(scope="module")
def server() -> Any:
    with SimulatorServer(SimulatorConfig()) as running:
        yield running


@pytest.fixture
def sim(server: SimulatorServer) -> SimulatorServer:
    server.configure(**_DEFAULTS)
    server.reset()
    return server


def call(sim: SimulatorServer, kind: str = "gemini", prompt: str = "a mug"):
    async def main():
        settings = ProviderSettings(kind, sim.base_url, Secret("FAKE-TEST-shapes-0123456789abcdef"),  # type: ignore[arg-type]
                                    "header" if kind == "gemini" else "bearer", PRO)
        provider = make_provider(settings)
        try:
            return await provider.generate(ImageRequest(prompt, PRO))
        except ProviderError as exc:
            return exc
        finally:
            await provider.aclose()

    return asyncio.run(main())


# (script outcome, class, manifest status, retryable) on the native route
NATIVE = [
    ("429_no_details", "RateLimited", "failed", True),
    ("429_list", "RateLimited", "failed", True),
    ("429_capacity", "Overloaded", "failed", True),
    ("429_per_day_text", "QuotaExhausted", "deferred", False),
    ("503_capacity", "Overloaded", "failed", True),
    ("500", "ServerError", "failed", True),
    ("401", "AuthError", "failed", False),
    ("403", "AuthError", "failed", False),
    ("image_other", "NoImageReturned", "failed", True),
    ("parts_null", "NoImageReturned", "failed", True),
    ("content_empty", "ContentBlocked", "blocked", False),
    ("image_prohibited", "ContentBlocked", "blocked", False),
    ("blocked", "ContentBlocked", "blocked", False),
    ("prompt_blocked", "ContentBlocked", "blocked", False),
]


@pytest.mark.parametrize(("outcome", "cls", "status", "retry"), NATIVE)
def test_native_shapes_are_classified_as_their_recorded_bodies(sim, outcome, cls, status, retry):
    sim.configure(script={"mug": [outcome]})
    exc = call(sim)
    assert type(exc).__name__ == cls, getattr(exc, "message", exc)
    assert (error_status(exc), is_retryable(exc)) == (status, retry)
    if outcome in ("image_other", "image_prohibited", "blocked", "content_empty", "parts_null"):
        assert exc.cost_usd > 0  # the prompt (and thinking) were billed
    if outcome == "image_other":
        assert "could not generate the image" in exc.message  # finishMessage kept
    if outcome == "503_capacity":
        assert exc.retry_after == 2.0 and exc.reason == "capacity"


def test_five_hundreds_have_no_details_like_the_real_ones(sim):
    sim.configure(script={"mug": ["500", "503"]})
    url = f"{sim.base_url}/v1beta/models/{PRO}:generateContent"
    body = {"contents": [{"parts": [{"text": "a mug"}]}]}
    for _ in range(2):
        assert "details" not in httpx.post(url, json=body).json()["error"]


def test_unflagged_drafts_the_last_image_is_the_answer(sim):
    sim.configure(draft_style="unflagged", thought_images=2)
    url = f"{sim.base_url}/v1beta/models/{PRO}:generateContent"
    parts = httpx.post(url, json={"contents": [{"parts": [{"text": "a mug"}]}]}).json()["candidates"][0]["content"]["parts"]
    images = [p for p in parts if "inlineData" in p]
    assert len(images) == 3 and not any(p.get("thought") for p in images)
    assert all("thoughtSignature" in p for p in images)
    image = call(sim)
    assert (image.width, image.height) == get_model(PRO).expected_pixels("1:1", "1K")  # not a draft


@pytest.mark.parametrize("shape", ["no_details", "omitted", "extra_text"])
def test_usage_shapes_are_priced_from_what_is_reported(sim, shape):
    sim.configure(usage_shape=shape, usage_as_strings=shape == "extra_text")
    image = call(sim)
    spec = get_model(PRO)
    if shape == "omitted":
        assert image.cost_usd == spec.list_price("1K")
    else:
        # the image is never priced as text: at least the list price, plus the reported rest
        assert image.cost_usd >= spec.list_price("1K")
        assert image.cost_usd == pytest.approx(cost_of(image.usage, spec, "1K"))


def test_openai_route_moderation_blocked_is_blocked_not_failed(sim):
    sim.configure(script={"mug": ["blocked"]})
    exc = call(sim, "openai")
    assert type(exc).__name__ == "ContentBlocked" and error_status(exc) == "blocked"
    assert exc.reason == "moderation_blocked"


def test_openai_429_without_retry_after_uses_the_message(sim):
    sim.configure(script={"mug": ["429"]}, script_retry_delay=3.0, openai_retry_after=False)
    url = f"{sim.base_url}/v1/images/generations"
    answer = httpx.post(url, json={"model": PRO, "prompt": "a mug"})
    assert answer.status_code == 429 and "retry-after" not in answer.headers
    sim.configure(script={"mug": ["429_no_details"]})
    exc = call(sim, "openai")
    assert type(exc).__name__ == "RateLimited" and exc.retry_after == 6.0


def test_openai_strict_mode_refuses_what_gpt_image_refuses(sim):
    sim.configure(openai_strict=True)
    url = f"{sim.base_url}/v1/images/generations"
    refused = httpx.post(url, json={"model": PRO, "prompt": "a mug", "response_format": "b64_json"})
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "response_format"
    assert httpx.post(url, json={"model": PRO, "prompt": "a mug", "size": "1024x1024"}).status_code == 200
    # bananaflow's relay body carries response_format/aspect_ratio/image_size: refused (a 400,
    # not billed), the client sends the same request once more without them, and gets the image
    sim.reset()
    image = call(sim, "openai")
    assert image.width > 0
    assert [r["http_status"] for r in sim.request_log()] == [400, 200]


def test_cli_flags_select_the_shapes():
    args = build_parser().parse_args(["--draft-style", "unflagged", "--usage-shape", "no_details",
                                      "--openai-no-retry-after", "--openai-strict"])
    config = config_from_args(args)
    assert (config.draft_style, config.usage_shape, config.openai_retry_after, config.openai_strict) == (
        "unflagged", "no_details", False, True)
