"""The simulator's judge parts: scripted defects, the judge's eye, JSON for any schema."""
from __future__ import annotations

import io
from typing import Any

import jsonschema
import pytest
from PIL import Image

from bananaflow.quality.feedback import CORRECTIONS_MARKER
from bananaflow.quality.verdict_schema import gemini_response_schema, openai_json_schema, verdict_from_reply
from bananaflow.testing.simulator import SimulatorConfig
from bananaflow.testing.simulator.defects import defect_for
from bananaflow.testing.simulator.images import WHITE, render_image
from bananaflow.testing.simulator.judge_eye import Findings, inspect
from bananaflow.testing.simulator.schema_fill import fill_schema

PROMPT = "A studio photo of Ceramic mug model {} on a pure white background."


def published(data: bytes, side: int, quality: int) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").resize((side, side), Image.Resampling.LANCZOS).save(out, "JPEG",
                                                                                                  quality=quality)
    return out.getvalue()


@pytest.mark.parametrize(("side", "quality"), [(2048, 92), (800, 85), (500, 60)])
def test_the_eye_sees_each_defect_and_nothing_on_clean_images(side: int, quality: int) -> None:
    expected = {None: set(), "garbled_text": {"text_and_labels"}, "extra_object": {"single_product"}}
    for i in range(6):
        prompt = PROMPT.format(f"E{i}")
        for defect, checks in expected.items():
            image = published(render_image(prompt, 1024, 1024, "image/png", WHITE, defect), side, quality)
            assert set(inspect(image, prompt).failed) == checks, (i, defect)


def test_the_eye_works_on_other_ratios_and_names_where_the_hand_is() -> None:
    prompt = PROMPT.format("R1")
    image = render_image(prompt, 928, 1152, "image/jpeg", WHITE, "extra_object")
    reason = inspect(image, prompt).failed["single_product"]
    assert "hand" in reason and "bottom left" in reason


def test_a_grey_sweep_fails_the_background_only_when_white_was_asked() -> None:
    grey = render_image(PROMPT.format("G1"), 1024, 1024, "image/png", (228, 228, 232))
    assert set(inspect(grey, "pure white background").failed) == {"background_and_framing"}
    assert inspect(grey, "a kitchen scene").passed


def test_defects_follow_the_script_and_once_ends_with_corrections() -> None:
    defects = {"model D1": "once", "model D2": "always:extra_object"}
    assert defect_for(defects, PROMPT.format("D1")) == "garbled_text"
    assert defect_for(defects, PROMPT.format("D1") + "\n" + CORRECTIONS_MARKER) is None
    assert defect_for(defects, PROMPT.format("D2") + "\n" + CORRECTIONS_MARKER) == "extra_object"
    assert defect_for(defects, PROMPT.format("D3")) is None


@pytest.mark.parametrize("bad", [{"x": "sometimes"}, {"x": "once:sparkles"}])
def test_unknown_defects_are_refused_by_the_config(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="defects"):
        SimulatorConfig(defects=bad)


def test_unknown_judge_outcomes_are_refused_by_the_config() -> None:
    with pytest.raises(ValueError, match="judge_script"):
        SimulatorConfig(judge_script={"": ["ok", "meh"]})


FAILED = Findings({"text_and_labels": "the label is garbled"})


def test_our_own_schemas_carry_what_the_eye_saw() -> None:
    for schema in (gemini_response_schema(), openai_json_schema()["schema"]):
        verdict = verdict_from_reply(fill_schema(schema, FAILED), model="sim")
        assert not verdict.passed and verdict.reasons == ("text_and_labels: the label is garbled",)
    assert verdict_from_reply(fill_schema(openai_json_schema()["schema"], Findings()), model="sim").passed


SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"ok": {"type": "boolean"}, "score": {"type": "integer", "minimum": 1, "maximum": 5},
                                      "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "minItems": 2}},
     "required": ["ok", "score", "tags"], "additionalProperties": False},
    {"$defs": {"Node": {"type": "object", "properties": {"value": {"type": "string"},
                                                          "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
                        "required": ["value"]}}, "$ref": "#/$defs/Node"},
    {"type": "object", "properties": {"amount": {"anyOf": [{"type": "number", "exclusiveMaximum": 0}, {"type": "string"}]},
                                      "kind": {"type": ["string", "null"], "enum": ["a", "b"]},
                                      "when": {"type": "string", "format": "date-time"}, "c": {"const": 3}},
     "required": ["amount", "kind", "when", "c"]},
    {"type": "array", "items": {"type": "number", "minimum": 0.25, "maximum": 0.5}, "minItems": 3, "maxItems": 3},
    {"type": "object", "properties": {name: {"type": "object", "properties": {"pass": {"type": "boolean"},
                                                                                "why": {"type": "string", "minLength": 5}},
                                             "required": ["pass", "why"]}
                                      for name in ("same_product", "text_and_labels")},
     "required": ["same_product", "text_and_labels"]},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_any_json_schema_gets_a_valid_value(schema: dict[str, Any]) -> None:
    jsonschema.validate(fill_schema(schema, FAILED), schema)


def test_checks_keyed_by_name_get_each_checks_answer() -> None:
    value = fill_schema(SCHEMAS[-1], FAILED)
    assert value["same_product"]["pass"] is True and value["text_and_labels"] == {"pass": False,
                                                                                  "why": "the label is garbled"}
