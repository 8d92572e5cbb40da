"""RunOptions: one definition of what a run can be told, one merge rule over blocks."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from bananaflow.cli.arguments import options_from_args
from bananaflow.cli.main import EXIT_USAGE, build_parser, main
from bananaflow.errors import ConfigurationError
from bananaflow.limits.settings import LimitSettings
from bananaflow.options import ExecutionOptions, Flag, LimitOptions, NoFlag, RunOptions, SpendOptions, resolve_limits


def test_limit_options_are_the_limit_settings_each_optional_with_the_same_constraints() -> None:
    assert set(LimitOptions.model_fields) == set(LimitSettings.model_fields)
    assert LimitOptions().given() == {}
    for field, info in LimitOptions.model_fields.items():
        assert info.description == LimitSettings.model_fields[field].description
        bounds = [m for m in info.metadata if not isinstance(m, (Flag, NoFlag))]
        assert bounds == LimitSettings.model_fields[field].metadata, field  # ge=1, gt=0 ... alike
        assert info.default is None
    with pytest.raises(ValidationError):
        LimitOptions(max_in_flight=0)
    with pytest.raises(ValidationError):
        LimitOptions(requests_per_minute=-1)


def test_a_run_option_wins_an_empty_one_takes_the_block_then_the_default() -> None:
    block = LimitSettings(max_in_flight=16, requests_per_minute=30, adaptive=True)
    merged = resolve_limits(LimitOptions(max_in_flight=4, adaptive=False), block)
    assert merged.max_in_flight == 4 and merged.adaptive is False  # set by the run: wins (False too)
    assert merged.requests_per_minute == 30  # empty in the run: the block's
    assert merged.max_attempts == 5  # neither: the default
    assert resolve_limits(LimitOptions(), None) == LimitSettings()


def test_parameters_carry_only_what_was_set_and_read_back_the_same() -> None:
    options = RunOptions(spend=SpendOptions(max_cost_usd=5.0, fallback_models=["gemini-3.1-flash-image"]),
                         execution=ExecutionOptions(shard_count=3))
    params = options.as_parameters()
    assert params == {"spend": {"max_cost_usd": 5.0, "fallback_models": ["gemini-3.1-flash-image"]},
                      "execution": {"shard_count": 3}}
    assert RunOptions.model_validate(params) == options
    shard = options.with_changes(execution={"shard_index": 2}).as_parameters()
    assert shard["execution"] == {"shard_count": 3, "shard_index": 2} and shard["spend"] == params["spend"]


def test_invalid_options_are_refused_with_the_field_named() -> None:
    with pytest.raises(ValidationError, match="deadline_hours"):
        RunOptions.model_validate({"execution": {"deadline_hours": 0}})
    with pytest.raises(ValidationError, match="shard_index 2 is not below shard_count 2"):
        ExecutionOptions(shard_index=2, shard_count=2)
    with pytest.raises(ValidationError, match="extra"):
        RunOptions.model_validate({"limits": {"max_in_flite": 3}})  # a typo is not silently ignored
    with pytest.raises(ConfigurationError, match="limits"):
        resolve_limits(LimitOptions(), LimitSettings.model_construct(max_in_flight=0))


def test_the_cli_builds_the_same_options_a_deployment_would_pass() -> None:
    args = build_parser().parse_args([
        "run", "c.csv", "--bucket", "shop", "--concurrency", "3", "--rpm", "20", "--max-cost", "5",
        "--fallback-model", "gemini-3.1-flash-image", "--no-fallback", "--map", 'sku="Variant SKU"', "--mode", "auto",
    ])
    assert options_from_args(args).as_parameters() == {
        "reading": {"column_map": {"Variant SKU": "sku"}},
        "delivery": {"bucket": "shop"},
        "limits": {"max_in_flight": 3, "requests_per_minute": 20.0},
        "spend": {"max_cost_usd": 5.0, "fallback_models": ["gemini-3.1-flash-image"], "allow_fallback": False},
        "execution": {"mode": "auto"},
    }


@pytest.mark.parametrize("flags, said", [
    (["--deadline-hours", "0"], "--deadline-hours should be greater than 0"),
    (["--concurrency", "0"], "--concurrency should be greater than or equal to 1"),
    (["--max-cost", "-2"], "--max-cost should be greater than 0"),
    (["--batch-max-items", "0"], "--batch-max-items should be greater than or equal to 1"),
])
def test_bad_flags_are_one_line_in_cli_terms(flags, said, capsys) -> None:  # noqa: ANN001
    assert main(["run", "c.csv", "--bucket", "b", *flags]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
