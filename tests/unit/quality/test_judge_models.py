"""Judge models in models.toml: prices, bounded worst case, clear refusal of unknown ids."""
from __future__ import annotations

from pathlib import Path

import pytest

from bananaflow.errors import ConfigurationError
from bananaflow.providers import models as image_models
from bananaflow.providers.base import Usage
from bananaflow.quality.judge_models import (
    SCHEMA_AND_OVERHEAD_TOKENS,
    default_judge_model_id,
    estimate_text_tokens,
    get_judge_model,
    known_judge_models,
)


@pytest.fixture(autouse=True)
def _fresh_table():
    image_models._load.cache_clear()
    yield
    image_models._load.cache_clear()


def test_the_default_judge_is_a_known_flash_model_priced_per_token() -> None:
    spec = get_judge_model()
    assert spec.id == default_judge_model_id() and "flash" in spec.id and spec.id in known_judge_models()
    assert 0 < spec.input_usd_per_million < spec.output_usd_per_million
    assert spec.max_output_tokens > 0 and spec.input_image_tokens > 0


def test_cost_is_prompt_at_the_input_rate_and_answer_plus_thinking_at_the_output_rate() -> None:
    spec = get_judge_model()
    usage = Usage(prompt_tokens=3000, candidates_tokens=250, thoughts_tokens=150)
    expected = (3000 * spec.input_usd_per_million + 400 * spec.output_usd_per_million) / 1e6
    assert spec.cost_of_usage(usage) == pytest.approx(expected)


def test_the_worst_case_covers_any_answer_within_the_output_bound() -> None:
    spec = get_judge_model()
    text = "x" * 4000
    worst = spec.worst_case(text=text, images=3)
    prompt = estimate_text_tokens(text) + SCHEMA_AND_OVERHEAD_TOKENS + 3 * spec.input_image_tokens
    assert worst == spec.cost(prompt_tokens=prompt, output_tokens=spec.max_output_tokens)
    assert worst >= spec.cost(prompt_tokens=len(text) // 4 + 3 * spec.input_image_tokens, output_tokens=spec.max_output_tokens)
    assert worst < 0.05  # a judge call stays a small share of a Pro image ($0.134)


def test_text_tokens_are_never_under_estimated_for_other_scripts() -> None:
    assert estimate_text_tokens("abc" * 100) == 100
    assert estimate_text_tokens("茶" * 100) == 100  # 3 bytes each: one token per character at most


def test_an_unknown_judge_model_names_the_ways_out() -> None:
    with pytest.raises(ConfigurationError) as info:
        get_judge_model("gemini-9-ultra")
    assert "--qa-model" in info.value.message and "--qa off" in info.value.message
    assert default_judge_model_id() in info.value.message


def test_a_models_file_adds_a_judge_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "models.toml"
    extra.write_text('[judge_models."my-flash"]\ninput_usd_per_million = 0.1\noutput_usd_per_million = 0.4\n'
                     'input_image_tokens = 258\nmax_output_tokens = 512\nthinking_budget = 0\n', encoding="utf-8")
    monkeypatch.setenv("BANANAFLOW_MODELS_FILE", str(extra))
    spec = get_judge_model("my-flash")
    assert (spec.max_output_tokens, spec.thinking_budget, spec.thinking_level) == (512, 0, None)
    assert default_judge_model_id() in known_judge_models()  # the shipped ones stay


def test_a_judge_entry_missing_a_price_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "models.toml"
    extra.write_text('[judge_models."cheap"]\ninput_usd_per_million = 0.1\n', encoding="utf-8")
    monkeypatch.setenv("BANANAFLOW_MODELS_FILE", str(extra))
    with pytest.raises(ConfigurationError, match="output_usd_per_million"):
        get_judge_model("cheap")
