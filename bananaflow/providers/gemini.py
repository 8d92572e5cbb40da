"""Nano Banana through Google's native ``generateContent`` route.

One ``generate`` call is one HTTP POST and one classified outcome: a verified
``GeneratedImage`` or a ``ProviderError``. Request and response shapes follow
``shared/reference/gemini-image-api.md`` to the letter (camelCase, ``imageConfig`` inside
``generationConfig``, ``imageSize`` only for models that take it), because the server
rejects misplaced fields with a 400 that would otherwise be paid for in debugging time.
"""
from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import httpx

from bananaflow.errors import ConfigurationError, ContentBlocked, NoImageReturned
from bananaflow.providers._http import int_field, make_client, post_json, verify_image
from bananaflow.providers.base import GeneratedImage, ImageRequest, Usage
from bananaflow.providers.classify import classify_status
from bananaflow.providers.imaging import decode_base64_image
from bananaflow.providers.models import ModelSpec, get_model
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import mask_url, redact

SAFETY_FINISH_REASONS = frozenset(
    {"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "MODEL_ARMOR"}
)
NO_IMAGE_FINISH_REASONS = frozenset({"NO_IMAGE", "IMAGE_RECITATION", "IMAGE_OTHER", "OTHER"})


def validate_request(request: ImageRequest) -> ModelSpec:
    """Refuse, before any call, what the model would answer with a 400 (and bill for nothing)."""
    spec = get_model(request.model)
    spec.validate(request.aspect_ratio, request.image_size)
    if len(request.reference_images) > spec.max_reference_images:
        raise ConfigurationError(
            f"{len(request.reference_images)} reference images; {spec.id} takes at most "
            f"{spec.max_reference_images}"
        )
    return spec


def build_body(request: ImageRequest, spec: ModelSpec) -> dict[str, Any]:
    """The exact JSON body of a ``generateContent`` call for one image."""
    parts: list[dict[str, Any]] = [{"text": request.prompt}]
    for ref in request.reference_images:
        parts.append(
            {"inlineData": {"mimeType": ref.mime_type, "data": base64.b64encode(ref.data).decode("ascii")}}
        )
    image_config: dict[str, str] = {"aspectRatio": request.aspect_ratio}
    if spec.sends_image_size:
        image_config["imageSize"] = request.image_size
    return {
        "contents": [{"role": "user", "parts": parts}],
        "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": image_config},
    }


def usage_from_metadata(meta: Any) -> Usage:
    """``usageMetadata`` to ``Usage``; int64 counters may be strings, absent ones are 0."""
    meta = meta if isinstance(meta, dict) else {}
    image_tokens = 0
    for detail in meta.get("candidatesTokensDetails") or ():
        if isinstance(detail, dict) and detail.get("modality") == "IMAGE":
            image_tokens += int_field(detail, "tokenCount", "token_count")
    return Usage(
        prompt_tokens=int_field(meta, "promptTokenCount", "prompt_token_count"),
        candidates_tokens=int_field(meta, "candidatesTokenCount", "candidates_token_count"),
        thoughts_tokens=int_field(meta, "thoughtsTokenCount", "thoughts_token_count"),
        image_tokens=image_tokens,
        total_tokens=int_field(meta, "totalTokenCount", "total_token_count"),
    )


def cost_of(usage: Usage, spec: ModelSpec, image_size: str, *, batch: bool = False, image: bool = True) -> float:
    """Bill as Google does (half of everything in Batch mode), from the tokens reported.

    ``image=False`` prices an answer without an image (blocked, NO_IMAGE, text only): its
    prompt and thinking tokens are billed all the same. Some finishMessages say "You will not
    be charged"; the usage the answer reports is counted anyway: over-counting a few hundred
    tokens only stops a ``--max-cost`` run a little early, under-counting lets it overshoot. With no usage at all, an image is
    assumed at list price (and an image-less answer at nothing). When the breakdown
    (``candidatesTokensDetails``) is missing, the image is priced at list price and only the
    output left beyond the image's tokens as text: pricing all output at the text rate would
    under-count an image about 13x and let a run overshoot ``--max-cost``."""
    if usage == Usage():
        return spec.list_price(image_size, batch=batch) if image else 0.0
    if image and usage.image_tokens == 0:
        assumed = int(spec.image_tokens.get(image_size, 0))
        other = usage.thoughts_tokens + max(0, usage.candidates_tokens - assumed)
        text = spec.cost_from_usage(
            prompt_tokens=usage.prompt_tokens, image_tokens=0, other_output_tokens=other, batch=batch
        )
        return round(spec.list_price(image_size, batch=batch) + text, 6)
    other = max(0, usage.candidates_tokens + usage.thoughts_tokens - usage.image_tokens)
    return spec.cost_from_usage(
        prompt_tokens=usage.prompt_tokens, image_tokens=usage.image_tokens, other_output_tokens=other, batch=batch
    )


async def image_from_response(
    payload: dict[str, Any],
    request: ImageRequest,
    spec: ModelSpec,
    *,
    verify_size: bool,
    batch: bool = False,
) -> GeneratedImage:
    """A ``GenerateContentResponse`` body to a verified ``GeneratedImage``, or the
    classified reason there is none (``ContentBlocked``, ``NoImageReturned``,
    ``BadResponse``). Shared by realtime calls and Batch-mode result lines, so both modes
    skip thought images, verify bytes and bill from usage in exactly the same way. An
    answer without an image carries its billed cost on the error (``cost_usd``, ``usage``)."""
    usage = usage_from_metadata(payload.get("usageMetadata"))
    try:
        mime, b64, finish = _pick_image(payload, spec.id)
    except (ContentBlocked, NoImageReturned) as exc:
        exc.usage = usage
        exc.cost_usd = cost_of(usage, spec, request.image_size, batch=batch, image=False)
        raise
    data = decode_base64_image(b64)
    real_mime, width, height = await verify_image(
        data,
        mime,
        spec.expected_pixels(request.aspect_ratio, request.image_size) if verify_size else None,
        model=spec.id,
        context=f"{spec.id} {request.aspect_ratio} {request.image_size}",
    )
    return GeneratedImage(
        data=data,
        mime_type=real_mime,
        width=width,
        height=height,
        model=spec.id,
        usage=usage,
        cost_usd=cost_of(usage, spec, request.image_size, batch=batch),
        finish_reason=finish,
        response_id=payload.get("responseId") if isinstance(payload.get("responseId"), str) else None,
    )


class GeminiProvider:
    """``ImageProvider`` for ``{base}/v1beta/models/{model}:generateContent``.

    Sends exactly one credential, chosen by ``settings.auth_style``: ``x-goog-api-key``
    header, ``Authorization: Bearer`` (relays), or ``?key=`` (works, but puts the key in
    URLs; the httpx loggers are redacted and transport errors rewritten for that case).
    """

    name = "gemini"

    def __init__(self, settings: ProviderSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.base_url = settings.base_url
        self._client, self._owns_client = make_client(client, settings.timeout_s)

    def __repr__(self) -> str:
        return f"GeminiProvider(base_url={mask_url(self.base_url)!r}, auth_style={self.settings.auth_style!r})"

    def endpoint(self, model: str) -> str:
        """The generateContent URL, without any credential."""
        return f"{self.base_url}/v1beta/models/{quote(model, safe='.-_')}:generateContent"

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        """One attempt: validate, POST, parse, verify. Raises a classified ``ProviderError``."""
        spec = validate_request(request)
        response, payload = await post_json(
            self._client, self.settings, self.endpoint(spec.id), build_body(request, spec), model=spec.id,
            auth_headers=await self.auth_headers(),
        )
        if "error" in payload and not payload.get("candidates"):
            raise classify_status(response.status_code, payload, headers=response.headers, model=spec.id)
        return await image_from_response(payload, request, spec, verify_size=self.settings.should_verify_size)

    async def auth_headers(self) -> dict[str, str]:
        """Headers carrying a credential the settings do not hold (Vertex AI's OAuth token)."""
        return {}

    async def aclose(self) -> None:
        """Close the HTTP client if this provider created it."""
        if self._owns_client:
            await self._client.aclose()


def _pick_image(payload: dict[str, Any], model: str) -> tuple[str | None, str, str | None]:
    """``(mimeType, base64, finishReason)`` of the last non-thought image, or the reason
    there is none, as ``ContentBlocked`` or ``NoImageReturned``."""
    candidates = payload.get("candidates") or []
    if not isinstance(candidates, list) or not candidates:  # promptFeedback without candidates
        feedback = payload.get("promptFeedback") or {}
        reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
        if reason:
            message = feedback.get("blockReasonMessage") or ""
            raise ContentBlocked(
                f"prompt blocked: {reason}{f' ({message})' if message else ''}",
                reason=str(reason),
                http_status=200,
                model=model,
            )
        raise NoImageReturned("response has no candidates", http_status=200, model=model)
    candidate = candidates[0] if isinstance(candidates[0], dict) else {}
    finish = candidate.get("finishReason")
    finish = str(finish) if finish else None
    if finish in SAFETY_FINISH_REASONS:
        note = candidate.get("finishMessage")
        raise ContentBlocked(
            f"image blocked: {finish}{f' ({_short(note, 300)})' if note else ''}",
            reason=finish,
            http_status=200,
            model=model,
        )
    content = candidate.get("content") or {}
    parts = content.get("parts") if isinstance(content, dict) else None
    images: list[tuple[str | None, str]] = []
    texts: list[str] = []
    for part in parts or ():
        if not isinstance(part, dict) or part.get("thought") is True:
            continue
        inline = part.get("inlineData") or part.get("inline_data")
        if isinstance(inline, dict) and inline.get("data"):
            images.append((inline.get("mimeType") or inline.get("mime_type"), inline["data"]))
        elif isinstance(part.get("text"), str):
            texts.append(part["text"])
    if images:
        mime, b64 = images[-1]
        return mime, b64, finish
    note = candidate.get("finishMessage")
    if finish in NO_IMAGE_FINISH_REASONS:
        why = f"finishReason {finish}{f' ({_short(note, 300)})' if note else ''}"
    elif texts:
        why = f"text only: {_short(' '.join(texts))!r}"
    elif parts:
        why = "only thought parts"
    else:
        why = f"no parts (finishReason {finish or 'missing'}{f': {_short(note, 300)}' if note else ''})"
    raise NoImageReturned(f"no image returned: {why}", finish_reason=finish, http_status=200, model=model)


def _short(text: object, limit: int = 120) -> str:
    flat = " ".join(redact(str(text)).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
