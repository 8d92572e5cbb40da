"""Both providers over real HTTP against bananaflow's simulator (skipped if it is absent)."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

simulator = pytest.importorskip("bananaflow.testing.simulator")

from bananaflow.errors import (  # noqa: E402
    AuthError,
    BadResponse,
    ContentBlocked,
    NetworkError,
    NoImageReturned,
    Overloaded,
    ProviderError,
    ProviderTimeout,
    QuotaExhausted,
    RateLimited,
    ServerError,
)
from bananaflow.generation.retry import RetryPolicy, call_with_retries  # noqa: E402
from bananaflow.providers import GeneratedImage, ImageRequest, make_provider  # noqa: E402
from bananaflow.providers.settings import ProviderSettings  # noqa: E402
from bananaflow.secrets import Secret  # noqa: E402

KEY = "sim-test-key-0123456789"
PRO = "gemini-3-pro-image"
FAULTS = {
    "F-429": ["429"], "F-day": ["429_day"], "F-500": ["500"], "F-503": ["503"], "F-502": ["html_502"],
    "F-trunc": ["truncated_json"], "F-thought": ["thought_only"], "F-noimg": ["no_image"],
    "F-size": ["wrong_size"], "F-b64": ["bad_base64"], "F-reset": ["reset"], "F-slow": ["slow"],
    "F-block": ["blocked"], "F-pblock": ["prompt_blocked"], "F-retry": ["429", "500", "ok"],
}


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    config = simulator.SimulatorConfig(api_key=KEY, script=FAULTS, script_retry_delay=0.05, slow_seconds=1.0)
    with simulator.SimulatorServer(config) as server:
        yield server


def settings(sim: Any, kind: str = "gemini", style: str = "header", key: str = KEY) -> ProviderSettings:
    return ProviderSettings(kind, sim.base_url, Secret(key), style, PRO, timeout_s=0.5)  # type: ignore[arg-type]


def generate(cfg: ProviderSettings, prompt: str, **kw: Any) -> GeneratedImage:
    async def go() -> GeneratedImage:
        provider = make_provider(cfg)
        try:
            return await provider.generate(ImageRequest(prompt, PRO, **kw))
        finally:
            await provider.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize(("kind", "style"), [("gemini", "header"), ("gemini", "query"), ("gemini", "bearer"), ("openai", "bearer")])
def test_success(sim: Any, kind: str, style: str) -> None:
    image = generate(settings(sim, kind, style), "yellow banana bottle")
    assert (image.width, image.height) == (1024, 1024) and image.mime_type in ("image/png", "image/jpeg")
    assert 0.1 < image.cost_usd < 0.2


def test_gemini_16_9_2k_size_verified(sim: Any) -> None:
    image = generate(settings(sim), "wide banana", aspect_ratio="16:9", image_size="2K")
    assert (image.width, image.height) == (2752, 1536)


@pytest.mark.parametrize("kind", ["gemini", "openai"])
def test_wrong_key(sim: Any, kind: str) -> None:
    with pytest.raises(AuthError):
        generate(settings(sim, kind, "header" if kind == "gemini" else "bearer", key="wrong-key-999"), "x")


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("F-429", RateLimited), ("F-day", QuotaExhausted), ("F-500", ServerError), ("F-503", Overloaded),
        ("F-502", ServerError), ("F-trunc", BadResponse), ("F-thought", NoImageReturned),
        ("F-noimg", NoImageReturned), ("F-size", BadResponse), ("F-b64", BadResponse),
        ("F-reset", NetworkError), ("F-slow", ProviderTimeout), ("F-block", ContentBlocked),
        ("F-pblock", ContentBlocked),
    ],
)
def test_gemini_fault_classification(sim: Any, prompt: str, expected: type[ProviderError]) -> None:
    with pytest.raises(ProviderError) as info:
        generate(settings(sim), prompt)
    assert type(info.value) is expected, repr(info.value)
    assert KEY not in repr(info.value)
    if isinstance(info.value, RateLimited):
        assert info.value.retry_after == pytest.approx(0.05)


def test_retry_end_to_end(sim: Any) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(float(seconds))

    async def go() -> tuple[GeneratedImage, int]:
        provider = make_provider(settings(sim))
        try:
            return await call_with_retries(
                lambda: provider.generate(ImageRequest("F-retry", PRO)), RetryPolicy(initial_wait=0.01), sleep=sleep
            )
        finally:
            await provider.aclose()

    image, attempts = asyncio.run(go())
    assert attempts == 3 and image.width == 1024
    assert waits[0] >= 0.05  # the server's retryDelay, not the 10 ms backoff
