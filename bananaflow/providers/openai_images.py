"""Nano Banana through an OpenAI-compatible relay: ``POST {base}/v1/images/generations``.

The OpenAI images API has no field for aspect ratio or 1K/2K/4K, so the body carries the
standard ``size`` ("WxH", the model's expected pixels) plus the non-standard
``aspect_ratio`` and ``image_size`` that relays read. Relays often ignore all three, so by
default the real size is measured and recorded rather than enforced.
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import httpx

from bananaflow.errors import ConfigurationError, InvalidRequest, NoImageReturned
from bananaflow.providers._http import download, int_field, make_client, post_json, verify_image
from bananaflow.providers.base import GeneratedImage, ImageRequest, Usage
from bananaflow.providers.classify import classify_status
from bananaflow.providers.gemini import cost_of, validate_request
from bananaflow.providers.imaging import decode_base64_image
from bananaflow.providers.models import ModelSpec
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import mask_url

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[^,]*)?;base64,", re.IGNORECASE)


def generations_url(base_url: str) -> str:
    """``{base}/v1/images/generations``, without doubling a base that already ends in a
    version (``.../v1``) or in Google's compatibility prefix (``.../v1beta/openai``)."""
    base = base_url.rstrip("/")
    if re.search(r"/(v\d+[a-z0-9]*|openai)$", base):
        return f"{base}/images/generations"
    return f"{base}/v1/images/generations"


#: Fields beyond OpenAI's core that relays read; real gpt-image refuses each with
#: ``400 unknown_parameter`` (tests/fixtures/wire/openai_400_unknown_parameter_response_format.json).
EXTRA_FIELDS = ("response_format", "aspect_ratio", "image_size")


def build_body(request: ImageRequest, spec: ModelSpec, *, strict: bool = False) -> dict[str, Any]:
    """The JSON body for one image; ``size`` is the model's expected pixels for the request.
    ``strict`` leaves out ``EXTRA_FIELDS`` for endpoints that refuse them."""
    width, height = spec.expected_pixels(request.aspect_ratio, request.image_size)
    body: dict[str, Any] = {"model": spec.id, "prompt": request.prompt, "n": 1, "size": f"{width}x{height}"}
    if not strict:
        body.update(response_format="b64_json", aspect_ratio=request.aspect_ratio, image_size=request.image_size)
    return body


def refuses_extra_fields(exc: InvalidRequest) -> bool:
    """A 400 that names one of our ``EXTRA_FIELDS`` as an unknown parameter."""
    text = exc.message.lower()
    return "unknown parameter" in text and any(f"'{name}'" in text for name in EXTRA_FIELDS)


def usage_from_openai(raw: Any) -> Usage:
    """OpenAI image ``usage`` (input/output tokens) or chat-style (prompt/completion).
    Output not itemised is taken as image tokens: image models emit little else."""
    if not isinstance(raw, dict):
        return Usage()
    prompt = int_field(raw, "input_tokens", "prompt_tokens")
    output = int_field(raw, "output_tokens", "completion_tokens")
    details = raw.get("output_tokens_details") or raw.get("completion_tokens_details")
    image = int_field(details, "image_tokens") if isinstance(details, dict) and "image_tokens" in details else output
    return Usage(
        prompt_tokens=prompt,
        candidates_tokens=output,
        image_tokens=image,
        total_tokens=int_field(raw, "total_tokens") or prompt + output,
    )


class OpenAIImagesProvider:
    """``ImageProvider`` for OpenAI-compatible relays (bearer auth by default).

    Reference images are refused: ``/images/generations`` has no field for them, and
    silently dropping the product photo would produce a plausible but wrong product.
    """

    name = "openai"

    def __init__(self, settings: ProviderSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.base_url = settings.base_url
        self.url = generations_url(settings.base_url)
        self._client, self._owns_client = make_client(client, settings.timeout_s)
        self._strict = False  # True once the endpoint refused EXTRA_FIELDS

    def __repr__(self) -> str:
        return f"OpenAIImagesProvider(url={mask_url(self.url)!r}, auth_style={self.settings.auth_style!r})"

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        """One attempt: validate, POST, fetch the bytes, verify. Raises ``ProviderError``s."""
        spec = validate_request(request)
        if request.reference_images:
            raise ConfigurationError(
                "the OpenAI-compatible images route takes no reference images; "
                "use the gemini provider for edit mode"
            )
        expected = spec.expected_pixels(request.aspect_ratio, request.image_size)
        try:
            response, payload = await self._post(request, spec)
        except InvalidRequest as exc:
            # A strict endpoint (real gpt-image) refuses the fields relays read. A refused 400
            # is not billed, so the same request is sent once more without them, and every
            # later request of this provider leaves them out.
            if self._strict or not refuses_extra_fields(exc):
                raise
            self._strict = True
            response, payload = await self._post(request, spec)
        if "error" in payload and not payload.get("data"):
            raise classify_status(response.status_code, payload, headers=response.headers, model=spec.id)
        data, declared = await self._image_bytes(payload, spec.id)
        real_mime, width, height = await verify_image(
            data,
            declared,
            expected if self.settings.should_verify_size else None,
            model=spec.id,
            context=f"{spec.id} {request.aspect_ratio} {request.image_size}",
        )
        usage = usage_from_openai(payload.get("usage"))
        # Output not itemised (no ``output_tokens_details.image_tokens``) is not trusted to be the
        # image's price: the image is taken at list price and only output beyond its tokens as
        # text, as on the native route, so a relay's partial usage cannot shrink --max-cost.
        itemised = _itemised(payload.get("usage"))
        cost = cost_of(usage if itemised else replace(usage, image_tokens=0), spec, request.image_size)
        return GeneratedImage(
            data=data,
            mime_type=real_mime,
            width=width,
            height=height,
            model=spec.id,
            usage=usage,
            cost_usd=cost,
            finish_reason=None,
            response_id=payload.get("id") if isinstance(payload.get("id"), str) else None,
        )

    async def _post(self, request: ImageRequest, spec: ModelSpec) -> tuple[httpx.Response, dict[str, Any]]:
        body = build_body(request, spec, strict=self._strict)
        return await post_json(self._client, self.settings, self.url, body, model=spec.id)

    async def _image_bytes(self, payload: dict[str, Any], model: str) -> tuple[bytes, str | None]:
        items = payload.get("data")
        if not isinstance(items, list) or not items or not isinstance(items[0], dict):
            raise NoImageReturned("response has no data[0]", http_status=200, model=model)
        item = items[0]
        b64, url = item.get("b64_json"), item.get("url")
        if isinstance(b64, str) and b64:
            return _decode_maybe_data_uri(b64, item.get("mime_type"))
        if isinstance(url, str) and url:
            if url.startswith("data:"):
                return _decode_maybe_data_uri(url, None)
            fetched = await download(self._client, url, model=model)
            return fetched.content, fetched.headers.get("content-type")
        raise NoImageReturned("data[0] has neither b64_json nor url", http_status=200, model=model)

    async def aclose(self) -> None:
        """Close the HTTP client if this provider created it."""
        if self._owns_client:
            await self._client.aclose()


def _itemised(raw: Any) -> bool:
    details = raw.get("output_tokens_details") or raw.get("completion_tokens_details") if isinstance(raw, dict) else None
    return isinstance(details, dict) and "image_tokens" in details


def _decode_maybe_data_uri(text: str, declared: Any) -> tuple[bytes, str | None]:
    """Plain base64, or a ``data:image/png;base64,`` URI as some relays send."""
    match = _DATA_URI.match(text)
    if match:
        return decode_base64_image(text[match.end():]), match.group("mime")
    return decode_base64_image(text), declared if isinstance(declared, str) else None
