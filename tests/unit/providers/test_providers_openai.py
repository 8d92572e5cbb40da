"""OpenAIImagesProvider against MockTransport relays."""
from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PIL import Image

from bananaflow.errors import AuthError, BadResponse, ConfigurationError, NoImageReturned, RateLimited
from bananaflow.providers import OpenAIImagesProvider, make_provider
from bananaflow.providers.base import GeneratedImage, ImageRequest, ReferenceImage
from bananaflow.providers.openai_images import generations_url
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import Secret

KEY = "sk-relay-test-key-000000000000000000"
PRO = "gemini-3-pro-image"


def make_image(width: int, height: int, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (240, 200, 30)).save(buf, format=fmt)
    return buf.getvalue()


IMG = make_image(1024, 1024)


def settings(**kw: Any) -> ProviderSettings:
    base = dict(kind="openai", base_url="https://relay.test/v1", api_key=Secret(KEY), auth_style="bearer", model=PRO)
    base.update(kw)
    return ProviderSettings(**base)  # type: ignore[arg-type]


def run(handler: Callable[[httpx.Request], httpx.Response], request: ImageRequest, cfg: ProviderSettings | None = None) -> GeneratedImage:
    async def go() -> GeneratedImage:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await OpenAIImagesProvider(cfg or settings(), client).generate(request)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("https://relay.test", "https://relay.test/v1/images/generations"),
        ("https://relay.test/", "https://relay.test/v1/images/generations"),
        ("https://relay.test/v1", "https://relay.test/v1/images/generations"),
        ("https://generativelanguage.googleapis.com/v1beta/openai", "https://generativelanguage.googleapis.com/v1beta/openai/images/generations"),
    ],
)
def test_url_is_not_doubled(base: str, url: str) -> None:
    assert generations_url(base) == url


def test_request_shape_and_b64_response() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"created": 1, "data": [{"b64_json": base64.b64encode(IMG).decode()}]})

    image = run(handler, ImageRequest("a banana", PRO, aspect_ratio="16:9", image_size="2K"))
    (sent,) = seen
    assert str(sent.url) == "https://relay.test/v1/images/generations"
    assert sent.headers["authorization"] == f"Bearer {KEY}" and "x-goog-api-key" not in sent.headers
    assert json.loads(sent.content) == {
        "model": PRO, "prompt": "a banana", "n": 1, "size": "2752x1536",
        "response_format": "b64_json", "aspect_ratio": "16:9", "image_size": "2K",
    }
    # the relay ignored the size: recorded, not enforced (verify_size defaults off for openai)
    assert (image.width, image.height, image.mime_type) == (1024, 1024, "image/png")
    assert image.cost_usd == pytest.approx(0.134)  # no usage: list price


def test_size_enforced_when_asked() -> None:
    body = {"data": [{"b64_json": base64.b64encode(IMG).decode()}]}
    with pytest.raises(BadResponse, match="2752x1536"):
        run(lambda r: httpx.Response(200, json=body), ImageRequest("p", PRO, "16:9", "2K"), settings(verify_size=True))


def test_url_response_is_downloaded_without_credentials() -> None:
    seen: list[httpx.Request] = []
    jpeg = make_image(1024, 1024, "JPEG")

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "cdn.example":
            return httpx.Response(200, content=jpeg, headers={"content-type": "image/jpeg"})
        return httpx.Response(200, json={"data": [{"url": "https://cdn.example/img/1.jpg?X-Amz-Signature=abc"}]})

    image = run(handler, ImageRequest("p", PRO))
    assert image.data == jpeg and image.mime_type == "image/jpeg"
    download = seen[1]
    assert download.method == "GET" and "authorization" not in download.headers
    assert KEY not in str(download.url) and KEY not in str(download.headers)


def test_failed_download_is_bad_response() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "cdn.example":
            return httpx.Response(403, text="<Error>AccessDenied</Error>")
        return httpx.Response(200, json={"data": [{"url": "https://cdn.example/x.png"}]})

    with pytest.raises(BadResponse, match="download"):
        run(handler, ImageRequest("p", PRO))


def test_data_uri_and_usage_cost() -> None:
    body = {
        "data": [{"b64_json": "data:image/png;base64," + base64.b64encode(IMG).decode()}],
        "usage": {"input_tokens": 10, "output_tokens": 1120, "total_tokens": 1130},
    }
    image = run(lambda r: httpx.Response(200, json=body), ImageRequest("p", PRO))
    assert image.usage.image_tokens == 1120 and image.usage.prompt_tokens == 10
    # output not itemised: the image at list price, the prompt at the input rate
    assert image.cost_usd == pytest.approx(0.134 + 10 * 2 / 1e6)


def test_empty_data_is_no_image() -> None:
    with pytest.raises(NoImageReturned):
        run(lambda r: httpx.Response(200, json={"data": []}), ImageRequest("p", PRO))


def test_relay_errors_are_classified() -> None:
    err = {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}}
    with pytest.raises(AuthError):
        run(lambda r: httpx.Response(401, json=err), ImageRequest("p", PRO))
    with pytest.raises(RateLimited) as info:
        run(lambda r: httpx.Response(429, json={"error": {"message": "slow down"}}, headers={"retry-after": "7"}), ImageRequest("p", PRO))
    assert info.value.retry_after == 7.0


def test_reference_images_refused_before_call() -> None:
    calls: list[httpx.Request] = []
    with pytest.raises(ConfigurationError, match="reference"):
        run(lambda r: calls.append(r) or httpx.Response(200), ImageRequest("p", PRO, reference_images=(ReferenceImage(b"x"),)))
    assert calls == []


def test_make_provider_openai() -> None:
    provider = make_provider(settings())
    assert isinstance(provider, OpenAIImagesProvider)
    asyncio.run(provider.aclose())
