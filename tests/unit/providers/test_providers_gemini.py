"""GeminiProvider: exact request shape, response parsing, verification and cost."""
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

from bananaflow.errors import BadResponse, ConfigurationError, ContentBlocked, NoImageReturned
from bananaflow.providers import GeminiProvider, make_provider
from bananaflow.providers.base import GeneratedImage, ImageProvider, ImageRequest, ReferenceImage, Usage
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import Secret

KEY = "FAKEGeminiTestKey0000000000000000000000"
PRO = "gemini-3-pro-image"


def make_image(width: int, height: int, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (250, 220, 40)).save(buf, format=fmt)
    return buf.getvalue()


PNG_1K = make_image(1024, 1024)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ok_body(image: bytes = PNG_1K, mime: str = "image/png", usage: dict | None = None) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "thinking...", "thought": True},
                        {"inlineData": {"mimeType": "image/png", "data": b64(make_image(8, 8))}, "thought": True},
                        {"inlineData": {"mimeType": mime, "data": b64(image)}, "thoughtSignature": "opaque"},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": usage
        or {
            "promptTokenCount": 12,
            "candidatesTokenCount": 1400,
            "thoughtsTokenCount": 300,
            "totalTokenCount": 1712,
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1120}],
        },
        "modelVersion": PRO,
        "responseId": "resp-1",
    }


def settings(**kw: Any) -> ProviderSettings:
    base = dict(kind="gemini", base_url="https://gemini.test/", api_key=Secret(KEY), auth_style="header", model=PRO)
    base.update(kw)
    return ProviderSettings(**base)  # type: ignore[arg-type]


def run(
    handler: Callable[[httpx.Request], httpx.Response],
    request: ImageRequest,
    cfg: ProviderSettings | None = None,
) -> GeneratedImage:
    async def go() -> GeneratedImage:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            provider = GeminiProvider(cfg or settings(), client)
            try:
                return await provider.generate(request)
            finally:
                await provider.aclose()

    return asyncio.run(go())


def recording(body: dict | None = None, seen: list[httpx.Request] | None = None):
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(200, json=body if body is not None else ok_body())

    return handler


def test_exact_request_body_and_url() -> None:
    seen: list[httpx.Request] = []
    ref = make_image(4, 4, "JPEG")
    request = ImageRequest(
        prompt="banana on marble", model=PRO, aspect_ratio="1:1", image_size="1K",
        reference_images=(ReferenceImage(ref, "image/jpeg"),),
    )
    image = run(recording(seen=seen), request)
    (sent,) = seen
    assert sent.method == "POST"
    assert str(sent.url) == "https://gemini.test/v1beta/models/gemini-3-pro-image:generateContent"
    assert json.loads(sent.content) == {
        "contents": [
            {"role": "user", "parts": [
                {"text": "banana on marble"},
                {"inlineData": {"mimeType": "image/jpeg", "data": b64(ref)}},
            ]}
        ],
        "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "1:1", "imageSize": "1K"}},
    }
    assert (image.width, image.height, image.mime_type) == (1024, 1024, "image/png")
    assert image.data == PNG_1K  # the last non-thought image, not a thought image
    assert image.response_id == "resp-1" and image.finish_reason == "STOP"


@pytest.mark.parametrize(
    ("style", "header", "query"),
    [("header", "x-goog-api-key", None), ("bearer", "authorization", None), ("query", None, "key")],
)
def test_exactly_one_credential(style: str, header: str | None, query: str | None) -> None:
    seen: list[httpx.Request] = []
    run(recording(seen=seen), ImageRequest("p", PRO), settings(auth_style=style))
    (sent,) = seen
    present = {h for h in ("x-goog-api-key", "authorization") if h in sent.headers}
    assert present == ({header} if header else set())
    assert dict(sent.url.params) == ({query: KEY} if query else {})
    if header == "authorization":
        assert sent.headers["authorization"] == f"Bearer {KEY}"
    if header == "x-goog-api-key":
        assert sent.headers["x-goog-api-key"] == KEY


def test_image_size_omitted_for_25_flash() -> None:
    seen: list[httpx.Request] = []
    run(recording(seen=seen), ImageRequest("p", "gemini-2.5-flash-image", "1:1", "1K"))
    config = json.loads(seen[0].content)["generationConfig"]
    assert config == {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "1:1"}}


@pytest.mark.parametrize(
    ("request_", "match"),
    [
        (ImageRequest("p", PRO, aspect_ratio="7:3"), "allowed: 1:1"),
        (ImageRequest("p", PRO, image_size="2k"), "uppercase"),
        (ImageRequest("p", "imagen-4"), "unknown model"),
        (ImageRequest("p", "gemini-2.5-flash-image", reference_images=(ReferenceImage(b"x"),) * 4), "at most 3"),
    ],
)
def test_validation_before_any_call(request_: ImageRequest, match: str) -> None:
    calls: list[httpx.Request] = []
    with pytest.raises(ConfigurationError, match=match):
        run(recording(seen=calls), request_)
    assert calls == []


def test_jpeg_mislabelled_as_png_reports_jpeg() -> None:
    body = ok_body(make_image(1024, 1024, "JPEG"), mime="image/png")
    assert run(recording(body), ImageRequest("p", PRO)).mime_type == "image/jpeg"


def test_wrong_pixel_size_is_bad_response() -> None:
    with pytest.raises(BadResponse, match=r"1024x1024.*2048x2048"):
        run(recording(ok_body()), ImageRequest("p", PRO, image_size="2K"))


def test_wrong_pixel_size_allowed_when_verify_size_off() -> None:
    image = run(recording(ok_body()), ImageRequest("p", PRO, image_size="2K"), settings(verify_size=False))
    assert (image.width, image.height) == (1024, 1024)


def test_corrupt_base64_is_bad_response() -> None:
    body = ok_body()
    body["candidates"][0]["content"]["parts"][-1]["inlineData"]["data"] = "iVBORw0KGgo$$$"
    with pytest.raises(BadResponse, match="base64"):
        run(recording(body), ImageRequest("p", PRO))


def test_undecodable_image_is_bad_response() -> None:
    body = ok_body()
    body["candidates"][0]["content"]["parts"][-1]["inlineData"]["data"] = b64(PNG_1K[:500])
    with pytest.raises(BadResponse, match="does not decode"):
        run(recording(body), ImageRequest("p", PRO))


def test_only_thought_parts_is_no_image() -> None:
    body = ok_body()
    body["candidates"][0]["content"]["parts"] = body["candidates"][0]["content"]["parts"][:2]
    with pytest.raises(NoImageReturned, match="thought"):
        run(recording(body), ImageRequest("p", PRO))


def test_text_only_is_no_image() -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "I cannot draw that"}]}, "finishReason": "STOP"}]}
    with pytest.raises(NoImageReturned, match="text only"):
        run(recording(body), ImageRequest("p", PRO))


@pytest.mark.parametrize("reason", ["NO_IMAGE", "IMAGE_RECITATION", "IMAGE_OTHER", "OTHER"])
def test_no_image_finish_reasons(reason: str) -> None:
    body = {"candidates": [{"content": {"parts": []}, "finishReason": reason}]}
    with pytest.raises(NoImageReturned) as info:
        run(recording(body), ImageRequest("p", PRO))
    assert info.value.finish_reason == reason and info.value.retryable


@pytest.mark.parametrize(
    "reason", ["IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"]
)
def test_safety_finish_is_content_blocked(reason: str) -> None:
    body = {"candidates": [{"finishReason": reason, "finishMessage": "Unable to show the generated image.", "index": 0}]}
    with pytest.raises(ContentBlocked) as info:
        run(recording(body), ImageRequest("p", PRO))
    assert info.value.reason == reason and not info.value.retryable and info.value.status == "blocked"


def test_prompt_block_is_content_blocked() -> None:
    body = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 9}}
    with pytest.raises(ContentBlocked) as info:
        run(recording(body), ImageRequest("p", PRO))
    assert info.value.reason == "PROHIBITED_CONTENT"


def test_no_candidates_without_block_is_no_image() -> None:
    with pytest.raises(NoImageReturned):
        run(recording({"candidates": []}), ImageRequest("p", PRO))


def test_usage_as_strings_gives_cost() -> None:
    usage = {
        "promptTokenCount": "572",
        "candidatesTokenCount": "1400",
        "thoughtsTokenCount": "300",
        "totalTokenCount": "2272",
        "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": "1120"}],
    }
    image = run(recording(ok_body(usage=usage)), ImageRequest("p", PRO))
    assert image.usage == Usage(prompt_tokens=572, candidates_tokens=1400, thoughts_tokens=300, image_tokens=1120, total_tokens=2272)
    # 1120 image tokens at $120/M + (1400+300-1120) text at $12/M + 572 prompt at $2/M
    assert image.cost_usd == pytest.approx((1120 * 120 + 580 * 12 + 572 * 2) / 1e6)


def test_missing_usage_costs_list_price() -> None:
    body = ok_body()
    del body["usageMetadata"]
    image = run(recording(body), ImageRequest("p", PRO))
    assert image.usage == Usage() and image.cost_usd == pytest.approx(0.134)


def test_make_provider_and_protocol() -> None:
    provider = make_provider(settings())
    assert isinstance(provider, GeminiProvider) and isinstance(provider, ImageProvider)
    assert provider.base_url == "https://gemini.test"
    asyncio.run(provider.aclose())
