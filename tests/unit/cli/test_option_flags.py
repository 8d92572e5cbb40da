"""The run options' flags are made from ``RunOptions``' fields: one flag per field (or a reason
why not), help from the field's description, the names users already type kept."""
from __future__ import annotations

import argparse
from collections import Counter

import pytest

from bananaflow.cli.arguments import flags_left_out, option_flags, options_from_args
from bananaflow.cli.main import EXIT_USAGE, build_parser, main
from bananaflow.options import RunOptions

#: The flags (and the fields they set) before they were generated: README, docs and scripts use them.
KEPT = {
    "images.job": "--job", "images.template": "--template", "images.model": "--model", "images.image_size": "--size",
    "images.aspect_ratio": "--aspect", "images.variant": "--variant", "images.output_preset": "--output-preset",
    "reading.encoding": "--encoding", "reading.catalog_preset": "--catalog-preset", "reading.column_map": "--map",
    "reading.previous_manifest": "--previous-manifest", "reading.include_unpublished": "--include-unpublished",
    "reading.sku_from": "--sku-from", "delivery.bucket": "--bucket", "delivery.prefix": "--prefix",
    "delivery.writeback": "--writeback", "delivery.public_base_url": "--public-base-url",
    "limits.max_in_flight": "--concurrency", "limits.requests_per_minute": "--rpm", "limits.images_per_minute": "--ipm",
    "limits.requests_per_day": "--rpd", "limits.spend_per_10min_usd": "--spend-cap", "limits.adaptive": "--adaptive",
    "spend.max_cost_usd": "--max-cost", "spend.fallback_models": "--fallback-model", "spend.allow_fallback": "--no-fallback",
    "spend.retry_blocked": "--retry-blocked", "execution.mode": "--mode", "execution.deadline_hours": "--deadline-hours",
    "execution.batch_max_items": "--batch-max-items", "execution.batch_poll_max_s": "--batch-poll-max",
}


def every_field() -> list[tuple[str, str | None]]:
    """(``group.field``, description) of every field of every options group."""
    return [
        (f"{group}.{name}", info.description)
        for group, group_info in RunOptions.model_fields.items()
        for name, info in group_info.annotation.model_fields.items()  # type: ignore[union-attr]
    ]


def flags_of(command: str) -> set[str]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {s for action in sub.choices[command]._actions for s in action.option_strings}


def test_every_run_option_is_exactly_one_flag_or_says_why_not() -> None:
    flagged = Counter(f.path for f in option_flags())
    left_out = flags_left_out()
    for path, _ in every_field():
        assert flagged[path] + (path in left_out) == 1, f"{path}: give it a flag or a NoFlag with the reason"
        assert path not in left_out or len(left_out[path]) > 10, f"{path}: say why it is not a flag"
    names = Counter(f.name for f in option_flags())
    assert [name for name, n in names.items() if n > 1] == [], "two options share a flag"


def test_help_is_the_fields_description() -> None:
    descriptions = dict(every_field())
    for flag in option_flags():
        description = descriptions[flag.path]
        assert description and flag.help.startswith(description.replace("%", "%%")), flag.path


def test_the_flags_users_already_type_set_the_same_fields() -> None:
    assert {f.path: f.name for f in option_flags() if f.path in KEPT} == KEPT
    assert set(KEPT.values()) | {"--no-progress"} <= flags_of("run")
    assert {"--job", "--template", "--size", "--aspect", "--model", "--variant", "--encoding", "--catalog-preset",
            "--map", "--previous-manifest", "--include-unpublished", "--sku-from", "--prefix", "--bucket",
            "--limit", "--rejections"} <= flags_of("prompts")
    assert {"--template", "--size", "--aspect", "--model", "--variant", "--job", "--prefix", "--latency",
            "--concurrency", "--rpm", "--ipm", "--rpd", "--spend-cap", "--map"} <= flags_of("estimate")


def test_defaults_bounds_and_choices_come_from_the_fields() -> None:
    by_name = {f.name: f for f in option_flags()}
    assert "(default: 8; at least 1)" in by_name["--concurrency"].help  # LimitSettings' default: the block may differ
    assert "(default: 500; at least 1)" in by_name["--batch-max-items"].help
    assert "above 0" in by_name["--deadline-hours"].help
    assert by_name["--mode"].settings["choices"] == ("realtime", "batch", "auto")
    assert by_name["--writeback"].settings["choices"] == ("shopify", "merchant")
    assert by_name["--rpd"].settings["type"] is int and by_name["--rpm"].settings["type"] is float


def test_switches_and_repeated_flags_set_their_fields() -> None:
    args = build_parser().parse_args([
        "run", "c.csv", "--no-fallback", "--adaptive", "--include-unpublished", "--retry-blocked",
        "--fallback-model", "a", "--fallback-model", "b", "--map", "sku=Artikel", "--map", 'title="Name"',
        "--size", "2K", "--batch-poll-max", "60",
    ])
    options = options_from_args(args)
    assert options.spend.allow_fallback is False and options.spend.retry_blocked is True
    assert options.limits.adaptive is True and options.reading.include_unpublished is True
    assert options.spend.fallback_models == ["a", "b"]
    assert options.reading.column_map == {"Artikel": "sku", "Name": "title"}
    assert options.images.image_size == "2K" and options.execution.batch_poll_max_s == 60.0
    assert options_from_args(build_parser().parse_args(["run", "c.csv"])) == RunOptions()  # nothing given: all empty


@pytest.mark.parametrize("flags, said", [
    (["--mode", "overnight"], "argument --mode: invalid choice: 'overnight'"),
    (["--concurrency", "many"], "argument --concurrency: invalid int value: 'many'"),
])
def test_a_value_of_the_wrong_kind_is_argparse_s_usage_error(flags, said, capsys) -> None:  # noqa: ANN001
    with pytest.raises(SystemExit) as stop:
        main(["run", "c.csv", *flags])
    assert stop.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
