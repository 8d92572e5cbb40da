"""Reading a judge's answer: the JSON text out of the wire shape, then the JSON out of the text.

What comes back is not always clean JSON in one text part (see ``tests/fixtures/wire/judge/``):
thinking models put thought parts (and a ``thoughtSignature``) before the answer; without a
schema, or through some relays, the JSON is wrapped in a Markdown fence or follows a sentence;
an answer cut at ``MAX_TOKENS`` is truncated JSON; a judge that is itself safety-blocked answers
``promptFeedback.blockReason`` or ``finishReason: SAFETY`` (chat: ``finish_reason:
content_filter`` or a ``refusal``). Every unusable 200 becomes ``JudgeUnavailable`` with a
``cause`` word (``blocked``, ``max_tokens``, ``empty``, ``truncated_json``, ``invalid_json``,
``schema``), and ``cost_usd`` set by the caller from the usage the answer reported.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from bananaflow.errors import JudgeUnavailable
from bananaflow.providers.base import Usage
from bananaflow.providers.gemini import SAFETY_FINISH_REASONS, usage_from_metadata
from bananaflow.providers.openai_images import usage_from_openai
from bananaflow.secrets import redact

__all__ = ["AnswerText", "extract_json", "gemini_answer", "openai_answer"]

_FENCE = re.compile(r"```[ \t]*(?:json|JSON|javascript)?[ \t]*\r?\n?(.*?)(?:```|$)", re.DOTALL)
#: finishReasons that say the answer was cut short.
_CUT = frozenset({"MAX_TOKENS", "length"})


@dataclass(frozen=True)
class AnswerText:
    """The answer's text (thought parts left out), its usage, and why it ended."""

    text: str
    usage: Usage
    finish: str | None
    #: False when the answer reported no usage at all (the caller charges the worst case)
    usage_reported: bool = True


def _short(text: object, limit: int = 160) -> str:
    flat = " ".join(redact(str(text)).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def gemini_answer(payload: dict[str, Any], *, model: str) -> AnswerText:
    """The text of a ``generateContent`` answer, or ``JudgeUnavailable`` for a blocked or
    empty one. Parts marked ``thought: true`` are skipped; every other text part is joined in
    order (the JSON may be split over parts in a streamed-then-merged answer)."""
    usage = usage_from_metadata(payload.get("usageMetadata"))
    reported = isinstance(payload.get("usageMetadata"), dict)
    candidates = payload.get("candidates")
    if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], dict):
        feedback = payload.get("promptFeedback")
        reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
        if reason:
            raise JudgeUnavailable(f"judge {model} refused the request: prompt blocked ({reason})", cause="blocked")
        raise JudgeUnavailable(f"judge {model} answered without candidates", cause="empty")
    candidate = candidates[0]
    finish = str(candidate["finishReason"]) if candidate.get("finishReason") else None
    if finish in SAFETY_FINISH_REASONS:
        note = candidate.get("finishMessage")
        raise JudgeUnavailable(
            f"judge {model} was itself safety-blocked ({finish}{f': {_short(note)}' if note else ''})", cause="blocked"
        )
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    texts = [part["text"] for part in parts or () if isinstance(part, dict) and part.get("thought") is not True
             and isinstance(part.get("text"), str)]
    text = "".join(texts).strip()
    if not text:
        if finish in _CUT:
            raise JudgeUnavailable(f"judge {model} used its whole output budget before answering (MAX_TOKENS)",
                                   cause="max_tokens")
        raise JudgeUnavailable(f"judge {model} answered no text (finishReason {finish or 'missing'})", cause="empty")
    return AnswerText(text, usage, finish, reported)


def openai_answer(payload: dict[str, Any], *, model: str) -> AnswerText:
    """The text of a chat completion (``choices[0].message.content``, a string or a list of
    text parts), or ``JudgeUnavailable`` for a refusal or a content filter."""
    usage = usage_from_openai(payload.get("usage"))
    usage = Usage(prompt_tokens=usage.prompt_tokens, candidates_tokens=usage.candidates_tokens,
                  thoughts_tokens=0, image_tokens=0, total_tokens=usage.total_tokens)
    reported = isinstance(payload.get("usage"), dict)
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise JudgeUnavailable(f"judge {model} answered without choices", cause="empty")
    choice = choices[0]
    finish = str(choice["finish_reason"]) if choice.get("finish_reason") else None
    raw_message = choice.get("message")
    message: dict[str, Any] = raw_message if isinstance(raw_message, dict) else {}
    if message.get("refusal"):
        raise JudgeUnavailable(f"judge {model} refused: {_short(message['refusal'])}", cause="blocked")
    if finish == "content_filter":
        raise JudgeUnavailable(f"judge {model} was itself blocked by a content filter", cause="blocked")
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict)
                          and part.get("type") in ("text", "output_text", None) and isinstance(part.get("text", ""), str))
    text = content.strip() if isinstance(content, str) else ""
    if not text:
        if finish in _CUT:
            raise JudgeUnavailable(f"judge {model} used its whole output budget before answering (length)",
                                   cause="max_tokens")
        raise JudgeUnavailable(f"judge {model} answered no text (finish_reason {finish or 'missing'})", cause="empty")
    return AnswerText(text, usage, finish, reported)


def extract_json(answer: AnswerText, *, model: str) -> object:
    """The JSON value in the answer's text: bare, inside a Markdown fence, or after a
    sentence of prose. Truncated JSON (an answer cut at its token limit, or a fence never
    closed) is ``cause="truncated_json"`` (``max_tokens`` when the answer says it was cut),
    anything else unparsable ``invalid_json``."""
    text = answer.text
    candidates = [text]
    fenced = _FENCE.search(text)
    if fenced:
        candidates.insert(0, fenced.group(1).strip())
    decoder = json.JSONDecoder()
    truncated = False
    for candidate in candidates:
        start = _first_brace(candidate)
        if start is None:
            continue
        try:
            value, _end = decoder.raw_decode(candidate, start)
            return value
        except json.JSONDecodeError as exc:
            truncated = truncated or exc.pos >= len(candidate.rstrip()) - 1 or "Unterminated" in exc.msg
    if answer.finish in _CUT:
        raise JudgeUnavailable(f"judge {model} answer was cut at its token limit ({answer.finish}): truncated JSON",
                               cause="max_tokens")
    if truncated:
        raise JudgeUnavailable(f"judge {model} answered truncated JSON (starts {_short(text, 60)!r})",
                               cause="truncated_json")
    raise JudgeUnavailable(f"judge {model} answered no JSON object (starts {_short(text, 60)!r})", cause="invalid_json")


def _first_brace(text: str) -> int | None:
    index = text.find("{")
    return None if index < 0 else index
