"""Answers of the native route, in Google's exact JSON shapes.

Clients classify failures from these bodies (``error.status``, the QuotaFailure quotaId,
RetryInfo), and skip thought parts to find the image, so the shapes follow the reference
document field for field.
"""
from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

from starlette.responses import JSONResponse, Response

from bananaflow.testing.simulator.calls import ImageCall, WireError
from bananaflow.testing.simulator.config import SimulatorConfig
from bananaflow.testing.simulator.engine import FinalImage
from bananaflow.testing.simulator.faults.quota import QuotaRejection
from bananaflow.testing.simulator.images import render_image
from bananaflow.testing.simulator.usage import TokenUsage, usage_for
from bananaflow.testing.simulator.wire_shapes import ERROR_SHAPES, empty_candidate, google_error_body

_STATUS_WORDS = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_SERVER_MESSAGES = {
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}
BAD_KEY_MESSAGE = "API key not valid. Please pass a valid API key."
THOUGHT_TEXT = (
    "**Composing the product shot**\n\nI am placing the product centred on a pure white "
    "background, filling most of the frame, with soft even studio lighting."
)
NO_IMAGE_TEXT = "I'm unable to create this image right now. Please try rephrasing your request."
TEXT_ONLY_TEXT = "Here is a description of the product shot you asked for."
_RATE_LIMIT_DOCS = "https://ai.google.dev/gemini-api/docs/rate-limits"
#: ``usage_shape="extra_text"``: output tokens counted but not itemised in the details.
EXTRA_TEXT_TOKENS = 163


def google_error(code: int, message: str, details: list[dict[str, Any]] | None = None) -> JSONResponse:
    """Google's error envelope: ``{"error": {"code", "message", "status", "details"}}``;
    ``details=None`` leaves the key out, as real 500/503 bodies do."""
    error: dict[str, Any] = {"code": code, "message": message, "status": _STATUS_WORDS[code]}
    if details is not None:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=code)


def quota_message(rejection: QuotaRejection) -> str:
    """Google's 429 text; a per-minute one repeats the retry delay, like the real one."""
    text = (
        "You exceeded your current quota, please check your plan and billing details. For more "
        f"information on this error, head to: {_RATE_LIMIT_DOCS}. To monitor your current usage, "
        "head to: https://ai.dev/rate-limit. \n"
        f"* Quota exceeded for metric: {rejection.quota_metric}, limit: {rejection.quota_value}, "
        f"model: {rejection.model}"
    )
    if rejection.retry_delay is not None:
        text += f"\nPlease retry in {rejection.retry_delay:.1f}s."
    return text


def _quota_details(rejection: QuotaRejection) -> list[dict[str, Any]]:
    details: list[dict[str, Any]] = [
        {"@type": "type.googleapis.com/google.rpc.Help", "links": [
            {"description": "Learn more about Gemini API quotas", "url": _RATE_LIMIT_DOCS}]},
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
            "quotaMetric": rejection.quota_metric,
            "quotaId": rejection.quota_id,
            "quotaDimensions": {"location": "global", "model": rejection.model},
            "quotaValue": rejection.quota_value,
        }]},
    ]
    if rejection.retry_delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": f"{rejection.retry_delay:.6f}s"})
    return details


def _usage_metadata(usage: TokenUsage, as_strings: bool) -> dict[str, Any]:
    prompt_details = [{"modality": "TEXT", "tokenCount": usage.prompt_text}]
    if usage.prompt_images:
        prompt_details.append({"modality": "IMAGE", "tokenCount": usage.prompt_images})
    candidate_details = []
    if usage.image:
        candidate_details.append({"modality": "IMAGE", "tokenCount": usage.image})
    if usage.text:
        candidate_details.append({"modality": "TEXT", "tokenCount": usage.text})
    meta: dict[str, Any] = {
        "promptTokenCount": usage.prompt,
        "candidatesTokenCount": usage.candidates,
        "thoughtsTokenCount": usage.thoughts,
        "totalTokenCount": usage.total,
        "promptTokensDetails": prompt_details,
        "candidatesTokensDetails": candidate_details,
    }
    return _stringify_ints(meta) if as_strings else meta


def _stringify_ints(value: Any) -> Any:
    """int64 counters as JSON strings, as proto3 JSON allows and Google sometimes sends."""
    if isinstance(value, dict):
        return {k: _stringify_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify_ints(v) for v in value]
    return str(value) if isinstance(value, int) else value


class GeminiRenderer:
    """Writes engine verdicts as ``generateContent`` answers."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._config = config

    def wire_error(self, error: WireError) -> Response:
        details = []
        if error.field is not None:
            details.append({"@type": "type.googleapis.com/google.rpc.BadRequest",
                            "fieldViolations": [{"field": error.field, "description": error.message}]})
        return google_error(error.http_status, error.message, details)

    def shaped(self, call: ImageCall, shape: str) -> Response:
        """A recorded error shape, or a 200 without an image that still bills its tokens."""
        if shape in ERROR_SHAPES:
            return JSONResponse(google_error_body(shape, call.model.id), status_code=ERROR_SHAPES[shape])
        body = self._envelope(call, usage_for(call, image=False, thought_text=THOUGHT_TEXT))
        body["candidates"] = [empty_candidate(shape)]
        return JSONResponse(body)

    def bad_key(self) -> Response:
        return google_error(400, BAD_KEY_MESSAGE, [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
             "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}},
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
             "message": BAD_KEY_MESSAGE},
        ])

    def rejection(self, rejection: QuotaRejection) -> Response:
        return google_error(429, quota_message(rejection), _quota_details(rejection))

    def server_error(self, status: int) -> Response:
        return google_error(status, _SERVER_MESSAGES[status], None)  # real 5xx bodies have no details

    def blocked(self, call: ImageCall, prompt_level: bool) -> Response:
        # a blocked answer still reports (and bills) the prompt and, for an image block, the thinking
        body = self._envelope(call, usage_for(call, image=False, thought_text="" if prompt_level else THOUGHT_TEXT))
        if prompt_level:
            body["promptFeedback"] = {"blockReason": "PROHIBITED_CONTENT"}
        else:
            body["candidates"] = [{
                "finishReason": "IMAGE_SAFETY",
                "finishMessage": "Unable to show the generated image. The image was filtered out "
                "because it violated Google's Generative AI Prohibited Use policy.",
                "index": 0,
            }]
        return JSONResponse(body)

    def generated(self, call: ImageCall, outcome: str, final: FinalImage | None) -> Response:
        parts: list[dict[str, Any]] = []
        text, finish = "", "STOP"
        thinks = outcome not in ("no_image", "text_only")
        thought_images = self._config.thought_images if thinks else 0
        if thinks:
            parts.append({"text": THOUGHT_TEXT, "thought": True})
            parts.extend(self._thought_images(call))
        if final is not None:
            parts.append({"inlineData": {"mimeType": final.mime_type, "data": final.data_b64},
                          "thoughtSignature": self._signature(call)})
        elif outcome in ("no_image", "text_only"):
            text = NO_IMAGE_TEXT if outcome == "no_image" else TEXT_ONLY_TEXT
            finish = "NO_IMAGE" if outcome == "no_image" else "STOP"
            parts.append({"text": text})
        usage = usage_for(call, image=final is not None, text=text,
                          thought_text=THOUGHT_TEXT if thinks else "", thought_images=thought_images)
        body = self._envelope(call, usage)
        body["candidates"] = [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}]
        return JSONResponse(body)

    def _thought_images(self, call: ImageCall) -> list[dict[str, Any]]:
        """Smaller drafts of the final image, before it: marked ``thought`` or, with
        ``draft_style="unflagged"``, plain image parts with a ``thoughtSignature`` (billed
        as thinking either way; a client must take the last image, not the first)."""
        if not self._config.thought_images:
            return []
        width, height = call.pixels
        mime = self._config.image_mime
        draft = render_image(call.prompt, max(8, width // 4), max(8, height // 4), mime)
        encoded = base64.b64encode(draft).decode("ascii")
        part: dict[str, Any]
        if self._config.draft_style == "unflagged":
            part = {"inlineData": {"mimeType": mime, "data": encoded}, "thoughtSignature": self._signature(call)}
        else:
            part = {"inlineData": {"mimeType": mime, "data": encoded}, "thought": True}
        return [part] * self._config.thought_images

    @staticmethod
    def _signature(call: ImageCall) -> str:
        key = f"{call.model.id}|{call.aspect_ratio}|{call.image_size}".encode() + call.prompt_digest
        return base64.b64encode(hashlib.sha256(key).digest() * 2).decode("ascii")

    def _envelope(self, call: ImageCall, usage: TokenUsage) -> dict[str, Any]:
        body: dict[str, Any] = {"modelVersion": call.model.id, "responseId": uuid.uuid4().hex[:22]}
        shape = self._config.usage_shape
        if shape != "omitted":
            meta = _usage_metadata(usage, False)
            if shape == "no_details":
                meta.pop("candidatesTokensDetails", None)
            elif shape == "extra_text":  # output the details do not itemise (real: 1283 vs IMAGE 1120)
                meta["candidatesTokenCount"] += EXTRA_TEXT_TOKENS
                meta["totalTokenCount"] += EXTRA_TEXT_TOKENS
            body["usageMetadata"] = _stringify_ints(meta) if self._config.usage_as_strings else meta
        return body
