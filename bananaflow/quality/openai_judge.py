"""The vision judge through an OpenAI-compatible relay: ``POST {base}/v1/chat/completions``.

The images go as ``data:`` URLs in ``image_url`` content parts, and ``response_format`` asks for
``json_schema`` in strict mode. Relays differ in what they pass on (some drop the response format,
some have no vision, some do not serve the judge model at all), so ``preflight_relay`` decides at
run start, for almost nothing, whether this relay can judge: it refuses in one line naming
``--qa-model`` and ``--qa off`` rather than failing every image of the run closed.
"""
from __future__ import annotations

import base64
import io
import json
import re
from typing import Any

import httpx
from PIL import Image

from bananaflow.errors import ClientError, ConfigurationError, JudgeUnavailable, ProviderError
from bananaflow.landing.outcome import Charge
from bananaflow.providers._http import credentials, make_client, post_json, send
from bananaflow.providers.classify import classify_status
from bananaflow.providers.settings import ProviderSettings
from bananaflow.quality.gemini_judge import JUDGE_TIMEOUT_S
from bananaflow.quality.judge_api import JudgeAnswer, JudgeInput
from bananaflow.quality.judge_models import get_judge_model
from bananaflow.quality.judge_prompt import image_labels, render_judge_prompt
from bananaflow.quality.reply import extract_json, openai_answer
from bananaflow.quality.verdict_schema import MIN_CONFIDENCE, openai_json_schema, verdict_from_reply

__all__ = ["OpenAIChatJudge", "build_chat_body", "chat_url", "models_url", "preflight_relay", "tiny_png"]

_VERSIONED = re.compile(r"/(v\d+[a-z0-9]*|openai)$")
#: Statuses that say "this relay cannot do that request" rather than "not now".
_CANNOT = (400, 404, 405, 415, 422, 501)


def _url(base_url: str, leaf: str) -> str:
    base = base_url.rstrip("/")
    return f"{base}/{leaf}" if _VERSIONED.search(base) else f"{base}/v1/{leaf}"


def chat_url(base_url: str) -> str:
    """``{base}/v1/chat/completions``, not doubling a base that ends in ``/v1`` or ``/openai``."""
    return _url(base_url, "chat/completions")


def models_url(base_url: str) -> str:
    return _url(base_url, "models")


def _data_url(data: bytes, mime_type: str) -> str:
    return f"data:{mime_type};base64,{base64.b64encode(data).decode('ascii')}"


def build_chat_body(request: JudgeInput, model: str, max_tokens: int, max_images: int) -> dict[str, Any]:
    """The chat-completions body of one judge call."""
    references = request.references[: max(0, max_images - 1)]
    trimmed = JudgeInput(request.image, request.mime_type, request.facts, references, request.asked, request.preset_rules)
    labels = image_labels(trimmed)
    content: list[dict[str, Any]] = [{"type": "text", "text": render_judge_prompt(trimmed)}]
    images = [(request.image, request.mime_type), *((ref.data, ref.mime_type) for ref in references)]
    for label, (data, mime) in zip(labels, images):
        content += [{"type": "text", "text": label},
                    {"type": "image_url", "image_url": {"url": _data_url(data, mime), "detail": "high"}}]
    return {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "response_format": {"type": "json_schema", "json_schema": openai_json_schema()},
        "max_tokens": max_tokens,
        "n": 1,
    }


class OpenAIChatJudge:
    """``Judge`` on an OpenAI-compatible relay (bearer auth by default)."""

    route = "openai"

    def __init__(self, settings: ProviderSettings, model: str | None = None, client: httpx.AsyncClient | None = None,
                 *, min_confidence: float = MIN_CONFIDENCE) -> None:
        self.settings = settings.with_timeout(min(settings.timeout_s, JUDGE_TIMEOUT_S))
        self.spec = get_judge_model(model)
        self.model = self.spec.id
        self.min_confidence = min_confidence
        self.url = chat_url(settings.base_url)
        self._client, self._owns_client = make_client(client, self.settings.timeout_s)

    def __repr__(self) -> str:
        return f"OpenAIChatJudge(model={self.model!r}, url={self.url!r})"

    def worst_case_cost(self, request: JudgeInput) -> float:
        images = 1 + min(len(request.references), self.spec.max_images - 1)
        return self.spec.worst_case(text=render_judge_prompt(request) + request.asked, images=images)

    async def judge(self, request: JudgeInput) -> JudgeAnswer:
        body = build_chat_body(request, self.model, self.spec.max_output_tokens, self.spec.max_images)
        response, payload = await post_json(self._client, self.settings, self.url, body, model=self.model)
        if "error" in payload and not payload.get("choices"):
            raise classify_status(response.status_code, payload, headers=response.headers, model=self.model)
        return self.answer_from(payload, request)

    def answer_from(self, payload: dict[str, Any], request: JudgeInput) -> JudgeAnswer:
        reported = isinstance(payload.get("usage"), dict)
        try:
            answer = openai_answer(payload, model=self.model)
        except JudgeUnavailable as exc:
            exc.cost_usd = self.worst_case_cost(request)
            raise
        cost = self.spec.cost_of_usage(answer.usage) if reported else self.worst_case_cost(request)
        try:
            verdict = verdict_from_reply(extract_json(answer, model=self.model), model=self.model,
                                         min_confidence=self.min_confidence)
        except JudgeUnavailable as exc:
            exc.cost_usd = cost
            raise
        return JudgeAnswer(verdict, Charge("judge", cost, answer.usage))

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def tiny_png(side: int = 16) -> bytes:
    """A white square PNG: the cheapest image a probe can show a judge."""
    out = io.BytesIO()
    Image.new("RGB", (side, side), (255, 255, 255)).save(out, format="PNG")
    return out.getvalue()


def _refusal(settings: ProviderSettings, model: str, why: str) -> ConfigurationError:
    return ConfigurationError(
        f"the OpenAI-compatible relay at {settings.base_url} cannot run the image judge with {model}: {why}; "
        f"pick a judge model it serves with --qa-model, or run with --qa off"
    )


async def _listed_models(client: httpx.AsyncClient, settings: ProviderSettings) -> set[str] | None:
    """The ids ``GET /models`` lists (free), or None when the relay does not say."""
    headers, params = credentials(settings)
    try:
        response = await send(client, "GET", models_url(settings.base_url), headers=headers, params=params,
                              timeout=settings.timeout_s)
        data = json.loads(response.content).get("data")
    except (ProviderError, ValueError, AttributeError):
        return None
    if not isinstance(data, list):
        return None
    return {str(item["id"]) for item in data if isinstance(item, dict) and item.get("id")}


def _serves(listed: set[str], model: str) -> bool:
    """Relays list ids bare, as ``models/ID`` or with an owner prefix (``google/ID``)."""
    return any(entry == model or entry.rsplit("/", 1)[-1] == model for entry in listed)


async def preflight_relay(settings: ProviderSettings, model: str | None = None,
                          client: httpx.AsyncClient | None = None) -> None:
    """Refuse (``ConfigurationError``, one line) when the relay cannot judge with ``model``.

    Checked, cheapest first: the judge model is known to bananaflow (no call); the relay's
    ``GET /models`` lists it (free; a relay without that route is given the benefit of the
    doubt); one tiny call with a 16 px white image and a two-field strict schema, capped at 32
    output tokens (about $0.001 on a Flash model) answers JSON. A 400/404/405/415/422/501 to
    it means the relay cannot (no chat route, no vision, no ``json_schema``); a 429, 5xx or a
    network error is raised as itself: it says nothing about what the relay can do."""
    spec = get_judge_model(model)
    settings = settings.with_timeout(min(settings.timeout_s, JUDGE_TIMEOUT_S))
    http, owned = make_client(client, settings.timeout_s)
    try:
        listed = await _listed_models(http, settings)
        if listed is not None and listed and not _serves(listed, spec.id):
            raise _refusal(settings, spec.id, "its /models list does not include that model")
        body = {
            "model": spec.id, "max_tokens": 32, "n": 1,
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": 'Is this image white? Answer {"white": true} or {"white": false}.'},
                {"type": "image_url", "image_url": {"url": _data_url(tiny_png(), "image/png"), "detail": "low"}}]}],
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "probe", "strict": True, "schema": {
                    "type": "object", "properties": {"white": {"type": "boolean"}},
                    "required": ["white"], "additionalProperties": False}}},
        }
        try:
            _response, payload = await post_json(http, settings, chat_url(settings.base_url), body, model=spec.id)
        except ClientError as exc:
            if exc.http_status in _CANNOT:
                raise _refusal(settings, spec.id, f"a probe with an image and a JSON schema was refused ({exc.message})") \
                    from None
            raise
        try:
            extract_json(openai_answer(payload, model=spec.id), model=spec.id)
        except JudgeUnavailable as exc:
            if exc.cause != "max_tokens":
                raise _refusal(settings, spec.id, f"it answered a JSON-schema probe without JSON ({exc.message})") \
                    from None
    finally:
        if owned:
            await http.aclose()
