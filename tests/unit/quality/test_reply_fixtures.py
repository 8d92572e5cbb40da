"""The judge's reply parser on real structured-output answers (tests/fixtures/wire/judge/)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bananaflow.errors import JudgeUnavailable
from bananaflow.providers.settings import ProviderSettings
from bananaflow.quality.gemini_judge import GeminiJudge
from bananaflow.quality.judge_api import JudgeInput, ProductFacts
from bananaflow.quality.openai_judge import OpenAIChatJudge
from bananaflow.quality.reply import extract_json, gemini_answer, openai_answer
from bananaflow.quality.verdict_schema import verdict_from_reply
from bananaflow.secrets import Secret

WIRE = Path(__file__).parents[2] / "fixtures" / "wire"
JUDGE = WIRE / "judge"


def load(name: str) -> dict[str, Any]:
    path = JUDGE / name if (JUDGE / name).exists() else WIRE / name
    return json.loads(path.read_text(encoding="utf-8"))


def gemini_json(name: str) -> object:
    return extract_json(gemini_answer(load(name), model="m"), model="m")


def cause_of(call: Any) -> str:
    with pytest.raises(JudgeUnavailable) as info:
        call()
    return info.value.cause


def test_every_fixture_has_provenance() -> None:
    provenance = (JUDGE / "PROVENANCE.md").read_text(encoding="utf-8")
    assert sorted(p.name for p in JUDGE.glob("*.json") if f"`{p.name}`" not in provenance) == []


@pytest.mark.parametrize(("name", "expected"), [
    ("gemini20flash_200_response_json_schema_pretty.json", {"city": "Mexico City", "country": "Mexico"}),
    ("gemini20flash_200_json_mime_no_schema.json", {"city": "Mexico City", "country": "Mexico"}),
    ("gemini25flash_200_json_schema_thoughts_counted.json",
     {"value": "A", "children": [{"value": "B"}, {"value": "C"}]}),
])
def test_recorded_gemini_json_answers_are_read(name: str, expected: object) -> None:
    assert gemini_json(name) == expected


def test_thinking_tokens_of_a_structured_answer_are_billed_as_output() -> None:
    answer = gemini_answer(load("gemini25flash_200_json_schema_thoughts_counted.json"), model="m")
    assert (answer.usage.prompt_tokens, answer.usage.candidates_tokens, answer.usage.thoughts_tokens) == (20, 16, 183)


def test_a_thought_part_is_never_taken_for_the_answer() -> None:
    payload = load("gemini3pro_200_thought_part_then_answer.json")
    parts = payload["candidates"][0]["content"]["parts"]
    thought = next(p["text"] for p in parts if p.get("thought"))
    answer_part = next(p["text"] for p in parts if not p.get("thought"))
    text = gemini_answer(payload, model="m").text
    assert text == answer_part.strip() and thought[:40] not in text


@pytest.mark.parametrize(("name", "cause"), [
    ("gemini25flash_200_max_tokens_cut_text.json", "max_tokens"),  # cut prose, finishReason MAX_TOKENS
    ("gemini25pro_200_max_tokens_thinking_no_parts.json", "max_tokens"),  # thinking ate the budget
    ("modelled_gemini_200_truncated_json_max_tokens.json", "max_tokens"),
    ("gemini15flash_200_stream_chunk_partial_json.json", "truncated_json"),  # '{"' and no finishReason
    ("gemini3pro_200_thought_part_then_answer.json", "invalid_json"),  # prose answer, no JSON at all
    ("gemini_200_finish_safety_content_empty.json", "blocked"),
    ("gemini_200_promptfeedback_prohibited_content.json", "blocked"),
    ("vertex_200_promptfeedback_model_armor.json", "blocked"),
    ("vertex_200_finish_model_armor_no_content.json", "blocked"),
])
def test_unusable_gemini_answers_are_judge_unavailable_with_their_cause(name: str, cause: str) -> None:
    assert cause_of(lambda: gemini_json(name)) == cause


def test_a_fenced_verdict_is_read_and_validated() -> None:
    verdict = verdict_from_reply(gemini_json("modelled_gemini_200_json_in_markdown_fence.json"), model="judge")
    assert not verdict.passed
    assert verdict.reasons == ("text_and_labels: The mug's print reads 'MORNNG BREW' instead of 'MORNING BREW'.",)


def test_a_recorded_json_answer_of_another_schema_breaks_ours() -> None:
    assert cause_of(lambda: verdict_from_reply(gemini_json("gemini20flash_200_response_json_schema_pretty.json"),
                                               model="m")) == "schema"


@pytest.mark.parametrize("name", ["openai_gpt4o_200_json_schema_content.json",
                                  "relay_snowflake_200_json_schema_refusal_empty.json"])
def test_recorded_chat_json_answers_are_read(name: str) -> None:
    answer = openai_answer(load(name), model="m")
    assert extract_json(answer, model="m") == {"city": "Mexico City", "country": "Mexico"}
    assert answer.usage.prompt_tokens > 0 and answer.usage.candidates_tokens > 0


@pytest.mark.parametrize(("name", "cause"), [
    ("modelled_openai_200_refusal.json", "blocked"),
    ("modelled_openai_200_content_filter.json", "blocked"),
    ("modelled_openai_200_length_cut_json.json", "max_tokens"),
])
def test_unusable_chat_answers_are_judge_unavailable(name: str, cause: str) -> None:
    assert cause_of(lambda: extract_json(openai_answer(load(name), model="m"), model="m")) == cause


def _request() -> JudgeInput:
    return JudgeInput(b"img", "image/png", ProductFacts(sku="S1", title="Mug"))


def test_an_unusable_answer_carries_what_it_was_billed() -> None:
    settings = ProviderSettings(kind="gemini", base_url="http://127.0.0.1:9", api_key=Secret("k"), auth_style="header",
                                model="gemini-3-pro-image")
    judge = GeminiJudge(settings)
    with pytest.raises(JudgeUnavailable) as info:
        judge.answer_from(load("modelled_gemini_200_truncated_json_max_tokens.json"), _request())
    assert info.value.cost_usd == judge.spec.cost(prompt_tokens=2871, output_tokens=52 + 2044)
    with pytest.raises(JudgeUnavailable) as blocked:  # no usage reported: charged the worst case, never 0
        judge.answer_from({"promptFeedback": {"blockReason": "OTHER"}}, _request())
    assert blocked.value.cost_usd == judge.worst_case_cost(_request())


def test_a_usable_chat_answer_is_charged_from_its_usage() -> None:
    settings = ProviderSettings(kind="openai", base_url="http://127.0.0.1:9/v1", api_key=Secret("k"), auth_style="bearer",
                                model="gemini-3-pro-image")
    judge = OpenAIChatJudge(settings)
    payload = load("modelled_openai_200_length_cut_json.json")
    payload["choices"][0]["finish_reason"] = "stop"
    payload["choices"][0]["message"]["content"] = load("modelled_gemini_200_json_in_markdown_fence.json")[
        "candidates"][0]["content"]["parts"][0]["text"]
    answer = judge.answer_from(payload, _request())
    assert answer.charge.purpose == "judge"
    assert answer.charge.cost_usd == judge.spec.cost(prompt_tokens=2871, output_tokens=2048)
    assert [c.name for c in answer.verdict.checks if not c.passed] == ["text_and_labels"]


@pytest.mark.parametrize(("text", "expected"), [
    ('Here is the verdict {as asked}: {"passed": false}', {"passed": False}),
    ('```\n{"passed": true}\n```\nThat is all.', {"passed": True}),
    ('{"passed": true} trailing words', {"passed": True}),
])
def test_json_after_or_around_prose_is_found(text: str, expected: object) -> None:
    from bananaflow.providers.base import Usage
    from bananaflow.quality.reply import AnswerText

    assert extract_json(AnswerText(text, Usage(), "STOP"), model="m") == expected
