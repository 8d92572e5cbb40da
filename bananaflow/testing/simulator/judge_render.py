"""A judge's answers in each wire: ``generateContent`` (AI Studio, Vertex) and chat completions.

Shaped like the recorded answers in ``tests/fixtures/wire/judge/``: on Gemini the JSON is the
text of the one non-thought part, which carries a ``thoughtSignature`` (a thought summary part
comes first only when ``includeThoughts`` is asked), ``usageMetadata`` bills the images as
prompt tokens and reports ``thoughtsTokenCount``; a blocked judge has a candidate with
``finishReason: SAFETY`` and no content, or no candidate and ``promptFeedback.blockReason``.
On chat completions the JSON is ``message.content``; a cut answer has ``finish_reason:
length``, a filtered one ``content_filter``, a refusal ``message.refusal``.
"""
from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

from starlette.responses import JSONResponse, Response

from bananaflow.testing.simulator.judge_wire import JudgeCall
from bananaflow.testing.simulator.usage import text_tokens

#: Thinking a low-level judge spends (reported, billed as output).
THOUGHT_TOKENS = 184
THOUGHT_SUMMARY = "**Comparing the product shot with the reference**\n\nChecking the label, the shape and the background."
PROSE_ANSWER = "The generated image looks like a faithful product photo overall; the label and background seem fine."
_SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "MEDIUM", "blocked": True},
]


def answer_text(outcome: str, value: Any) -> tuple[str, bool]:
    """The answer's text for ``outcome`` and whether it was cut at the token limit."""
    if outcome == "plain":  # a chat without a JSON response format: prose
        return str(value), False
    text = json.dumps(value, ensure_ascii=False, indent=None)
    if outcome == "fenced":
        return f"```json\n{json.dumps(value, ensure_ascii=False, indent=2)}\n```", False
    if outcome == "invalid_json":
        return PROSE_ANSWER, False
    if outcome == "truncated":
        return text[: max(1, len(text) // 2)], False
    if outcome == "max_tokens":
        return text[: max(1, len(text) // 3)], True
    if outcome == "schema_violation":
        return json.dumps({"passed": True, "verdict": "looks fine"}), False
    return text, False


def _prompt_tokens(call: JudgeCall) -> tuple[int, int]:
    return max(1, text_tokens(call.prompt)), len(call.images) * call.model.input_image_tokens


def _signature(call: JudgeCall) -> str:
    digest = hashlib.sha256(call.prompt.encode("utf-8") + call.model.id.encode()).digest()
    return base64.b64encode(digest * 3).decode("ascii")


def gemini_judge_answer(call: JudgeCall, outcome: str, value: Any) -> Response:
    """A 200 ``generateContent`` answer for ``outcome`` (ok, fenced, invalid_json, truncated,
    max_tokens, schema_violation, blocked, prompt_blocked)."""
    text_tokens_in, image_tokens = _prompt_tokens(call)
    body: dict[str, Any] = {"modelVersion": call.model.id, "responseId": uuid.uuid4().hex[:22]}
    output, thoughts = 0, THOUGHT_TOKENS
    if outcome == "prompt_blocked":
        body["promptFeedback"] = {"blockReason": "PROHIBITED_CONTENT"}
        thoughts = 0
    elif outcome == "blocked":
        body["candidates"] = [{"finishReason": "SAFETY", "index": 0, "safetyRatings": _SAFETY_RATINGS}]
    else:
        text, cut = answer_text(outcome, value)
        output = text_tokens(text)
        parts: list[dict[str, Any]] = []
        if call.include_thoughts:
            parts.append({"text": THOUGHT_SUMMARY, "thought": True})
        parts.append({"text": text, "thoughtSignature": _signature(call)})
        body["candidates"] = [{"content": {"role": "model", "parts": parts},
                               "finishReason": "MAX_TOKENS" if cut else "STOP", "index": 0}]
    prompt = text_tokens_in + image_tokens
    details = [{"modality": "TEXT", "tokenCount": text_tokens_in}]
    if image_tokens:
        details.append({"modality": "IMAGE", "tokenCount": image_tokens})
    usage: dict[str, Any] = {"promptTokenCount": prompt, "totalTokenCount": prompt + output + thoughts,
                             "promptTokensDetails": details}
    if output:
        usage["candidatesTokenCount"] = output
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    body["usageMetadata"] = usage
    return JSONResponse(body)


def chat_judge_answer(call: JudgeCall, outcome: str, value: Any) -> Response:
    """A 200 chat completion for ``outcome``."""
    text_tokens_in, image_tokens = _prompt_tokens(call)
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
    finish = "stop"
    output = 0
    if outcome == "prompt_blocked":
        message["refusal"] = "I'm sorry, but I can't help with that request."
        output = text_tokens(message["refusal"])
    elif outcome == "blocked":
        finish = "content_filter"
    else:
        text, cut = answer_text(outcome, value)
        message["content"] = text
        output = text_tokens(text)
        finish = "length" if cut else "stop"
    prompt = text_tokens_in + image_tokens
    return JSONResponse({
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
        "model": call.model.id, "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": output + THOUGHT_TOKENS,
                  "total_tokens": prompt + output + THOUGHT_TOKENS,
                  "prompt_tokens_details": {"cached_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": THOUGHT_TOKENS}},
        "system_fingerprint": None,
    })
