"""The official SDKs as oracles: if ``google-genai`` and ``openai`` parse the simulator's
answers and raise their usual exceptions, the simulator speaks the real wire protocol."""
from __future__ import annotations

import base64
import io
from typing import Any

import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from openai import OpenAI
from PIL import Image

from bananaflow.providers.models import get_model
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer

PRO = "gemini-3-pro-image"


@pytest.fixture(scope="module")
def sim() -> Any:
    config = SimulatorConfig(api_key="test-key", thought_images=2, script={"busy": ["429"]})
    with SimulatorServer(config) as running:
        yield running


@pytest.fixture
def gemini(sim: SimulatorServer) -> genai.Client:
    sim.reset()  # re-arms the script
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=sim.base_url))


@pytest.fixture
def openai_client(sim: SimulatorServer) -> OpenAI:
    sim.reset()
    return OpenAI(api_key="test-key", base_url=sim.base_url + "/v1", max_retries=0)


def _image_config(ratio: str, size: str = "2K") -> types.GenerateContentConfig:
    return types.GenerateContentConfig(
        response_modalities=["IMAGE"], image_config=types.ImageConfig(aspect_ratio=ratio, image_size=size)
    )


def test_genai_sdk_gets_an_image_of_the_right_size(gemini: genai.Client) -> None:
    response = gemini.models.generate_content(model=PRO, contents="a leather bag", config=_image_config("16:9"))
    parts = response.candidates[0].content.parts
    finals = [p for p in parts if p.inline_data is not None and not p.thought]
    assert len(finals) == 1 and finals[0].thought_signature
    assert sum(1 for p in parts if p.thought) == 3  # thought text + two thought images
    image = Image.open(io.BytesIO(finals[0].inline_data.data))
    assert image.size == get_model(PRO).expected_pixels("16:9", "2K")
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.usage_metadata.candidates_tokens_details[0].token_count == 1120


def test_genai_sdk_raises_client_error_429(gemini: genai.Client) -> None:
    with pytest.raises(genai_errors.ClientError) as caught:
        gemini.models.generate_content(model=PRO, contents="busy", config=_image_config("1:1"))
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"


def test_genai_sdk_raises_client_error_400_for_bad_ratio(gemini: genai.Client) -> None:
    with pytest.raises(genai_errors.ClientError) as caught:
        gemini.models.generate_content(model=PRO, contents="a bag", config=_image_config("7:3"))
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"


def test_openai_sdk_gets_a_b64_image(openai_client: OpenAI) -> None:
    result = openai_client.images.generate(
        model=PRO, prompt="a leather bag", n=1, size="1024x1536", response_format="b64_json"
    )
    image = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json)))
    assert image.size == get_model(PRO).expected_pixels("2:3", "1K")


def test_openai_sdk_raises_rate_limit_error(openai_client: OpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        openai_client.images.generate(model=PRO, prompt="busy")


def test_openai_sdk_raises_bad_request_error(openai_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.images.generate(model=PRO, prompt="a bag", extra_body={"aspect_ratio": "7:3"})
    assert caught.value.body["param"] == "aspect_ratio"
