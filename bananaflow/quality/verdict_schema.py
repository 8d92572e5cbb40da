"""The judge's answer: one response schema in two dialects, and its validation.

The model is asked for JSON constrained by a schema (Gemini's ``responseSchema``, an OpenAPI
subset; an OpenAI ``json_schema`` in strict mode on a relay), and the reply is validated again
here with pydantic, because a schema is a request, not a guarantee: relays drop it, truncated
answers break it, models repeat or forget an entry. Every number has bounds and the check names
are an enum, so a reply is either a complete verdict or ``JudgeUnavailable`` (fail closed).

The checks come before the overall ``passed`` in the schema's property order, so the model
looks at each check before it decides.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bananaflow.errors import JudgeUnavailable
from bananaflow.landing.verdict import CHECK_NAMES, CheckResult, Verdict

__all__ = [
    "MAX_REASON_CHARS", "MIN_CONFIDENCE", "CheckReply", "JudgeReply", "gemini_response_schema",
    "openai_json_schema", "verdict_from_reply",
]

MAX_REASON_CHARS = 300
MAX_SUMMARY_CHARS = 200
#: A check the judge passed with less confidence than this counts as failed ("unsure").
MIN_CONFIDENCE = 0.5


def gemini_response_schema() -> dict[str, Any]:
    """``generationConfig.responseSchema`` (Gemini's OpenAPI subset, upper-case types)."""
    check = {
        "type": "OBJECT",
        "properties": {
            "name": {"type": "STRING", "enum": list(CHECK_NAMES)},
            "passed": {"type": "BOOLEAN"},
            "confidence": {"type": "NUMBER", "minimum": 0, "maximum": 1},
            "reason": {"type": "STRING", "maxLength": MAX_REASON_CHARS},
        },
        "required": ["name", "passed", "confidence", "reason"],
        "propertyOrdering": ["name", "reason", "passed", "confidence"],
    }
    return {
        "type": "OBJECT",
        "properties": {
            "checks": {"type": "ARRAY", "items": check, "minItems": len(CHECK_NAMES), "maxItems": len(CHECK_NAMES)},
            "passed": {"type": "BOOLEAN"},
            "summary": {"type": "STRING", "maxLength": MAX_SUMMARY_CHARS},
        },
        "required": ["checks", "passed", "summary"],
        "propertyOrdering": ["checks", "passed", "summary"],
    }


def openai_json_schema() -> dict[str, Any]:
    """``response_format.json_schema`` for chat completions in strict mode: every property
    required, no others allowed (strict mode refuses ``maxLength``; pydantic still bounds it)."""
    check = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "enum": list(CHECK_NAMES)},
            "reason": {"type": "string"},
            "passed": {"type": "boolean"},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["name", "reason", "passed", "confidence"],
        "additionalProperties": False,
    }
    return {
        "name": "image_verdict",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "checks": {"type": "array", "items": check, "minItems": len(CHECK_NAMES), "maxItems": len(CHECK_NAMES)},
                "passed": {"type": "boolean"},
                "summary": {"type": "string"},
            },
            "required": ["checks", "passed", "summary"],
            "additionalProperties": False,
        },
    }


def _clip(text: object, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class CheckReply(BaseModel):
    """One entry of ``checks``. An over-long reason is cut, not refused: a verbose judge is
    still a judge; a missing or mistyped field is a schema violation."""

    model_config = ConfigDict(extra="ignore")

    name: str
    passed: bool
    confidence: float = Field(1.0, ge=0.0, le=1.0)
    reason: str = Field(max_length=MAX_REASON_CHARS)

    @field_validator("reason", mode="before")
    @classmethod
    def _cut_reason(cls, value: object) -> object:
        return _clip(value, MAX_REASON_CHARS) if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _known_check(cls, value: str) -> str:
        if value not in CHECK_NAMES:
            raise ValueError(f"unknown check {value!r}")
        return value


class JudgeReply(BaseModel):
    """The whole answer."""

    model_config = ConfigDict(extra="ignore")

    checks: list[CheckReply] = Field(min_length=1, max_length=4 * len(CHECK_NAMES))
    passed: bool
    summary: str = ""

    @field_validator("summary", mode="before")
    @classmethod
    def _cut_summary(cls, value: object) -> object:
        return _clip(value, MAX_SUMMARY_CHARS) if isinstance(value, str) else value


def verdict_from_reply(data: object, *, model: str, min_confidence: float = MIN_CONFIDENCE) -> Verdict:
    """A validated ``Verdict`` from the decoded JSON, or ``JudgeUnavailable(cause="schema")``.

    The image passes only when the judge said so *and* every check passed with at least
    ``min_confidence``: an answer that contradicts itself fails closed. A check named twice
    keeps its worse entry; a check left out is a schema violation (no silent pass)."""
    try:
        reply = JudgeReply.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "answer"
        raise JudgeUnavailable(
            f"judge {model} answered JSON that breaks its schema at {where}: {first.get('msg', 'invalid')}",
            cause="schema",
        ) from None
    by_name: dict[str, CheckResult] = {}
    for entry in reply.checks:
        passed = entry.passed and entry.confidence >= min_confidence
        reason = entry.reason
        if entry.passed and not passed:
            reason = f"judge unsure (confidence {entry.confidence:.2f}): {reason}"
        result = CheckResult(entry.name, passed, reason)
        earlier = by_name.get(entry.name)
        if earlier is None or (earlier.passed and not result.passed):
            by_name[entry.name] = result
    missing = [name for name in CHECK_NAMES if name not in by_name]
    if missing:
        raise JudgeUnavailable(f"judge {model} left out checks: {', '.join(missing)}", cause="schema")
    checks = tuple(by_name[name] for name in CHECK_NAMES)
    overall = reply.passed and all(check.passed for check in checks)
    if reply.passed and not overall:
        note = f"judge said pass, but a check failed; {reply.summary}".rstrip("; ")
    else:
        note = reply.summary
    return Verdict(overall, checks, stage="judge", model=model, note=note)
