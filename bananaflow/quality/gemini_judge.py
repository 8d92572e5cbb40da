"""The vision judge on Google's native route: ``generateContent`` on AI Studio or Vertex AI.

One ``judge`` call is one HTTP POST, like an image provider's ``generate``: the image as
published and the reference photos go as ``inlineData`` parts, each after a text label, and
``generationConfig`` asks for ``application/json`` under ``responseSchema`` with a bounded
``maxOutputTokens`` and a low thinking level (thinking is billed as output). Transport errors,
429 and 5xx are raised as the taxonomy's classified ``ProviderError`` (the gate retries them
under its own limits; this package sits below ``generation`` and does not retry); a 200 that
gives no usable verdict is ``JudgeUnavailable`` carrying what it was billed.
"""
from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import httpx

from bananaflow.errors import JudgeUnavailable
from bananaflow.landing.outcome import Charge
from bananaflow.providers._http import make_client, post_json
from bananaflow.providers.classify import classify_status
from bananaflow.providers.gcp_auth import AccessTokens, shared_tokens
from bananaflow.providers.gemini import usage_from_metadata
from bananaflow.providers.settings import ProviderSettings
from bananaflow.providers.vertex import resend_after_revoked_token, vertex_model_path
from bananaflow.quality.judge_api import JudgeAnswer, JudgeInput
from bananaflow.quality.judge_models import JudgeModelSpec, get_judge_model
from bananaflow.quality.judge_prompt import image_labels, render_judge_prompt
from bananaflow.quality.reply import extract_json, gemini_answer
from bananaflow.quality.verdict_schema import MIN_CONFIDENCE, gemini_response_schema, verdict_from_reply

__all__ = ["JUDGE_TIMEOUT_S", "GeminiJudge", "VertexJudge", "build_gemini_body"]

#: A judge answers in seconds; a hung one must not hold an item for the image timeout (180 s).
JUDGE_TIMEOUT_S = 90.0


def _blob(data: bytes, mime_type: str) -> dict[str, Any]:
    return {"inlineData": {"mimeType": mime_type, "data": base64.b64encode(data).decode("ascii")}}


def build_gemini_body(request: JudgeInput, spec: JudgeModelSpec) -> dict[str, Any]:
    """The exact ``generateContent`` body of one judge call."""
    references = request.references[: max(0, spec.max_images - 1)]
    trimmed = JudgeInput(request.image, request.mime_type, request.facts, references, request.asked, request.preset_rules)
    labels = image_labels(trimmed)
    parts: list[dict[str, Any]] = [{"text": render_judge_prompt(trimmed)}, {"text": labels[0]},
                                   _blob(request.image, request.mime_type)]
    for label, ref in zip(labels[1:], references):
        parts += [{"text": label}, _blob(ref.data, ref.mime_type)]
    config: dict[str, Any] = {
        "responseMimeType": "application/json",
        "responseSchema": gemini_response_schema(),
        "maxOutputTokens": spec.max_output_tokens,
        "candidateCount": 1,
    }
    if spec.thinking_level:
        config["thinkingConfig"] = {"thinkingLevel": spec.thinking_level}
    elif spec.thinking_budget is not None:
        config["thinkingConfig"] = {"thinkingBudget": spec.thinking_budget}
    return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}


class GeminiJudge:
    """``Judge`` on AI Studio (``{base}/v1beta/models/{model}:generateContent``), with the
    settings' one credential (``x-goog-api-key`` by default)."""

    route = "gemini"

    def __init__(self, settings: ProviderSettings, model: str | None = None, client: httpx.AsyncClient | None = None,
                 *, min_confidence: float = MIN_CONFIDENCE) -> None:
        self.settings = settings.with_timeout(min(settings.timeout_s, JUDGE_TIMEOUT_S))
        self.spec = get_judge_model(model)
        self.model = self.spec.id
        self.min_confidence = min_confidence
        self._client, self._owns_client = make_client(client, self.settings.timeout_s)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.settings.base_url!r})"

    def endpoint(self) -> str:
        return f"{self.settings.base_url}/v1beta/models/{quote(self.model, safe='.-_')}:generateContent"

    async def auth_headers(self) -> dict[str, str]:
        return {}

    def worst_case_cost(self, request: JudgeInput) -> float:
        images = 1 + min(len(request.references), self.spec.max_images - 1)
        return self.spec.worst_case(text=render_judge_prompt(request) + request.asked, images=images)

    async def judge(self, request: JudgeInput) -> JudgeAnswer:
        """One call. ``ProviderError`` (classified) when no usable HTTP answer came;
        ``JudgeUnavailable`` for a 200 without a usable verdict."""
        body = build_gemini_body(request, self.spec)
        response, payload = await post_json(self._client, self.settings, self.endpoint(), body, model=self.model,
                                            auth_headers=await self.auth_headers())
        if "error" in payload and not payload.get("candidates"):
            raise classify_status(response.status_code, payload, headers=response.headers, model=self.model)
        return self.answer_from(payload, request)

    def answer_from(self, payload: dict[str, Any], request: JudgeInput) -> JudgeAnswer:
        """A ``generateContent`` answer body to a ``JudgeAnswer`` (also for batch result lines)."""
        usage = usage_from_metadata(payload.get("usageMetadata"))
        reported = isinstance(payload.get("usageMetadata"), dict)
        cost = self.spec.cost_of_usage(usage) if reported else self.worst_case_cost(request)
        try:
            answer = gemini_answer(payload, model=self.model)
            verdict = verdict_from_reply(extract_json(answer, model=self.model), model=self.model,
                                         min_confidence=self.min_confidence)
        except JudgeUnavailable as exc:
            exc.cost_usd = cost
            raise
        return JudgeAnswer(verdict, Charge("judge", cost, usage))

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


class VertexJudge(GeminiJudge):
    """``Judge`` on Vertex AI: the same body, an OAuth bearer token from ADC, Vertex's errors
    explained (401 resent once with a new token, 403 names the role to grant)."""

    route = "vertex"

    def __init__(self, settings: ProviderSettings, model: str | None = None, client: httpx.AsyncClient | None = None,
                 *, tokens: AccessTokens | None = None, min_confidence: float = MIN_CONFIDENCE) -> None:
        super().__init__(settings, model, client, min_confidence=min_confidence)
        vertex_model_path(settings, self.model)  # a missing project fails here, before any call
        self._tokens = tokens
        self._token: str | None = None

    @property
    def tokens(self) -> AccessTokens:
        if self._tokens is None:
            self._tokens = shared_tokens(self.settings.gcp_credentials)
        return self._tokens

    def endpoint(self) -> str:
        return f"{self.settings.base_url}{vertex_model_path(self.settings, self.model)}:generateContent"

    async def auth_headers(self) -> dict[str, str]:
        self._token = await self.tokens.token()
        return {"Authorization": f"Bearer {self._token}"}

    async def judge(self, request: JudgeInput) -> JudgeAnswer:
        return await resend_after_revoked_token(lambda: super(VertexJudge, self).judge(request), self.tokens,
                                                lambda: self._token, self.settings)
