"""The judge's response schema (both dialects) and the validation of its answers."""
from __future__ import annotations

from typing import Any

import pytest

from bananaflow.errors import JudgeUnavailable
from bananaflow.landing.verdict import CHECK_NAMES
from bananaflow.quality.verdict_schema import (
    MAX_REASON_CHARS,
    gemini_response_schema,
    openai_json_schema,
    verdict_from_reply,
)


def _walk(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += _walk(value)
    elif isinstance(node, list):
        for value in node:
            found += _walk(value)
    return found


@pytest.mark.parametrize("schema", [gemini_response_schema(), openai_json_schema()["schema"]])
def test_every_number_is_bounded_and_check_names_are_an_enum(schema: dict[str, Any]) -> None:
    numbers = [n for n in _walk(schema) if str(n.get("type", "")).lower() in ("number", "integer")]
    assert numbers and all("minimum" in n and "maximum" in n for n in numbers)
    arrays = [n for n in _walk(schema) if str(n.get("type", "")).lower() == "array"]
    assert all(a["minItems"] == a["maxItems"] == len(CHECK_NAMES) for a in arrays)
    enums = [n["enum"] for n in _walk(schema) if "enum" in n]
    assert enums == [list(CHECK_NAMES)]


def test_the_openai_schema_is_strict_mode_valid() -> None:
    spec = openai_json_schema()
    assert spec["strict"] is True
    objects = [n for n in _walk(spec["schema"]) if n.get("type") == "object"]
    assert objects and all(o["additionalProperties"] is False and sorted(o["required"]) == sorted(o["properties"])
                           for o in objects)


def test_the_gemini_schema_uses_its_openapi_subset() -> None:
    schema = gemini_response_schema()
    types = {n["type"] for n in _walk(schema) if "type" in n}
    assert types <= {"OBJECT", "ARRAY", "STRING", "BOOLEAN", "NUMBER"}
    assert schema["propertyOrdering"][0] == "checks"  # checks first, the overall decision after them


def reply(**changes: Any) -> dict[str, Any]:
    checks = [{"name": n, "passed": True, "confidence": 0.9, "reason": f"{n} ok"} for n in CHECK_NAMES]
    body: dict[str, Any] = {"checks": checks, "passed": True, "summary": "fine"}
    body.update(changes)
    return body


def test_a_complete_passing_reply_is_a_passing_verdict_in_check_order() -> None:
    verdict = verdict_from_reply(reply(checks=list(reversed(reply()["checks"]))), model="m")
    assert verdict.passed and verdict.stage == "judge" and verdict.model == "m"
    assert [c.name for c in verdict.checks] == list(CHECK_NAMES)


def test_a_reply_that_says_pass_with_a_failed_check_fails_closed() -> None:
    body = reply()
    body["checks"][1] = {"name": "text_and_labels", "passed": False, "confidence": 0.8, "reason": "label reads GREN"}
    verdict = verdict_from_reply(body, model="m")
    assert not verdict.passed and verdict.reasons == ("text_and_labels: label reads GREN",)
    assert "check failed" in verdict.note


def test_an_unsure_pass_is_a_failure_with_the_doubt_named() -> None:
    body = reply()
    body["checks"][0]["confidence"] = 0.3
    verdict = verdict_from_reply(body, model="m")
    assert not verdict.passed and verdict.reasons[0].startswith("same_product: judge unsure (confidence 0.30)")


def test_a_check_named_twice_keeps_its_worse_entry() -> None:
    body = reply()
    body["checks"].append({"name": "single_product", "passed": False, "confidence": 0.9, "reason": "a hand"})
    assert verdict_from_reply(body, model="m").reasons == ("single_product: a hand",)


@pytest.mark.parametrize(("body", "where"), [
    (reply(checks=reply()["checks"][:4]), "left out checks: background_and_framing"),
    (reply(checks=[*reply()["checks"][:4], {"name": "vibes", "passed": True, "reason": "x"}]), "checks.4.name"),
    (reply(passed="maybe"), "passed"),
    ({"checks": [], "passed": True}, "checks"),
    ([1, 2], "answer"),
    (reply(checks=[{**c, "confidence": 7} for c in reply()["checks"]]), "confidence"),
])
def test_schema_violations_are_judge_unavailable(body: Any, where: str) -> None:
    with pytest.raises(JudgeUnavailable) as info:
        verdict_from_reply(body, model="m")
    assert info.value.cause == "schema" and where in info.value.message


def test_an_overlong_reason_is_cut_not_refused() -> None:
    body = reply()
    body["checks"][2]["reason"] = "word " * 500
    verdict = verdict_from_reply(body, model="m")
    assert len(verdict.checks[2].reason) == MAX_REASON_CHARS and verdict.checks[2].reason.endswith("...")
