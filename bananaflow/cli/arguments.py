"""The command line's run options, made from ``RunOptions``' fields, and the one place that
turns parsed arguments into ``RunOptions``.

Each field of each options group is one flag: ``--field-name`` unless its ``Flag`` spells it
otherwise, its help the field's description (with its default and bounds), its type, choices
(a ``Literal``) and repeatability (a list) read from the annotation. A field or group marked
``NoFlag`` is left out, the reason beside it. So an option is written once, in the model; the
bounds are checked by the model too, and a bad value is one line naming the flag.
"""
from __future__ import annotations

import argparse
import functools
import itertools
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from bananaflow.errors import BananaflowError
from bananaflow.options import Flag, NoFlag, RunOptions

ModelT = TypeVar("ModelT", bound=BaseModel)

#: What ``bananaflow prompts`` and ``estimate`` take (``run`` takes every run option):
#: what they read to plan and preview, no more.
PROMPTS_OPTIONS = ("images", "reading", "delivery.prefix", "delivery.bucket", "quality.qa", "quality.qa_model",
                   "quality.qa_max_attempts")
ESTIMATE_OPTIONS = (
    "images", "reading", "delivery.prefix", "limits.max_in_flight", "limits.requests_per_minute",
    "limits.images_per_minute", "limits.requests_per_day", "limits.spend_per_10min_usd",
    "quality.qa", "quality.qa_model", "quality.qa_max_attempts",
)


def parse_map(pairs: Sequence[str]) -> dict[str, str]:
    """``--map sku="Variant SKU"`` options as the loader's {file column: our field} mapping."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        field, column = field.strip(), column.strip().strip("'\"")
        if not sep or not field or not column:
            raise BananaflowError(f'--map {pair!r} is not FIELD="Column", e.g. --map sku="Variant SKU"')
        if column in mapping:
            raise BananaflowError(f"--map uses the column {column!r} twice")
        mapping[column] = field
    return mapping


#: Options whose repeated flag values become something else than a list (a mapping).
_CONVERTERS: dict[str, Callable[[list[str]], Any]] = {"reading.column_map": parse_map}


@dataclass(frozen=True)
class OptionFlag:
    """One run option on the command line: the field it sets and how argparse reads it."""

    group: str
    field: str
    name: str
    help: str
    settings: dict[str, Any]  # add_argument's other keywords: action, type, choices, metavar

    @property
    def path(self) -> str:
        """``group.field``, e.g. ``limits.max_in_flight``; also where argparse stores the value."""
        return f"{self.group}.{self.field}"


@functools.cache
def option_flags() -> tuple[OptionFlag, ...]:
    """Every run option's flag, in ``RunOptions``' order."""
    return tuple(
        _flag(group, name, info, model.empty_takes)
        for group, model in _groups()
        if _marker(RunOptions.model_fields[group], NoFlag) is None
        for name, info in model.model_fields.items()
        if _marker(info, NoFlag) is None
    )


def flags_left_out() -> dict[str, str]:
    """Run options the command line does not offer (``group.field``), each with its reason."""
    left: dict[str, str] = {}
    for group, model in _groups():
        group_reason = _marker(RunOptions.model_fields[group], NoFlag)
        for name, info in model.model_fields.items():
            reason = group_reason or _marker(info, NoFlag)
            if reason is not None:
                left[f"{group}.{name}"] = reason.reason
    return left


def add_option_flags(parser: argparse.ArgumentParser, *selection: str) -> None:
    """The flags of the run options ``selection`` names, groups (``limits``) or fields
    (``delivery.prefix``); all of them when it names none. One help section per group."""
    chosen = [f for f in option_flags() if not selection or f.group in selection or f.path in selection]
    unknown = set(selection) - {f.group for f in chosen} - {f.path for f in chosen}
    if unknown:
        raise ValueError(f"no flag for run options {sorted(unknown)}")
    for group, flags in itertools.groupby(chosen, key=lambda f: f.group):
        section = parser.add_argument_group(group, " ".join((_group_model(group).__doc__ or "").split()))
        for flag in flags:
            section.add_argument(flag.name, dest=flag.path, help=flag.help, **flag.settings)


def model_flags(model: type[BaseModel], group: str) -> tuple[OptionFlag, ...]:
    """The flags of a command's own model (e.g. ``bananaflow review``'s decisions), made as
    the run options' are; values land in ``args`` under ``group.field``."""
    return tuple(_flag(group, name, info, None) for name, info in model.model_fields.items()
                 if _marker(info, NoFlag) is None)


def add_model_flags(parser: argparse.ArgumentParser, model: type[BaseModel], group: str) -> None:
    section = parser.add_argument_group(group, " ".join((model.__doc__ or "").split()))
    for flag in model_flags(model, group):
        section.add_argument(flag.name, dest=flag.path, help=flag.help, **flag.settings)


def model_from_args(args: argparse.Namespace, model: type[ModelT], group: str, **fixed: Any) -> ModelT:
    """``model`` from the flags ``add_model_flags`` added (and ``fixed`` values); a bad value
    is one line naming the flag."""
    values = {f.field: v for f in model_flags(model, group) if (v := getattr(args, f.path, None)) is not None}
    try:
        return model.model_validate({**values, **fixed})
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = str(problem["loc"][0]) if problem["loc"] else ""
        names = {f.field: f.name for f in model_flags(model, group)}
        raise BananaflowError(f"{names.get(field, field)} {problem['msg'].lower()}, got {problem.get('input')!r}") from None


def options_from_args(args: argparse.Namespace) -> RunOptions:
    """The ``RunOptions`` a command line describes; flags not given stay empty, so the
    models' defaults (and blocks, where a run uses them) decide. Bad values are one line
    naming the flag."""
    given: dict[str, dict[str, Any]] = {}
    for flag in option_flags():
        value = getattr(args, flag.path, None)  # not every command has every flag
        if value is not None:
            convert = _CONVERTERS.get(flag.path)
            given.setdefault(flag.group, {})[flag.field] = convert(value) if convert else value
    groups: dict[str, BaseModel] = {}
    for group, values in given.items():
        try:
            groups[group] = _group_model(group).model_validate(values)
        except ValidationError as exc:
            raise BananaflowError(_in_cli_terms(exc, group)) from None
    return RunOptions.model_validate(groups)


def _in_cli_terms(exc: ValidationError, group: str) -> str:
    """``--deadline-hours must be greater than 0, got 0`` from pydantic's first error."""
    problem = exc.errors()[0]
    field = str(problem["loc"][0]) if problem["loc"] else ""
    names = {f.path: f.name for f in option_flags()}
    flag = names.get(f"{group}.{field}", field)
    message = problem["msg"].removeprefix("Input ").removeprefix("Value error, ")
    message = message[0].lower() + message[1:]
    return f"{flag} {message}, got {problem.get('input')!r}" if flag else message


def _groups() -> list[tuple[str, Any]]:
    """(name, model) of every options group of ``RunOptions``."""
    return [(name, _group_model(name)) for name in RunOptions.model_fields]


def _group_model(group: str) -> Any:
    model = RunOptions.model_fields[group].annotation
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"RunOptions.{group} is not an options group")
    return model


def _marker(info: FieldInfo, kind: type[Any]) -> Any:
    """The ``Flag`` or ``NoFlag`` in a field's annotation, if any."""
    return next((m for m in info.metadata if isinstance(m, kind)), None)


def _flag(group: str, name: str, info: FieldInfo, empty_takes: type[BaseModel] | None) -> OptionFlag:
    """A field's flag: name, argparse settings and help, all read from the field."""
    spelling = _marker(info, Flag) or Flag()
    flag = spelling.name or "--" + name.replace("_", "-")
    value_type = _value_type(info.annotation)
    settings = _settings(value_type, spelling, flag)
    if get_origin(value_type) is dict and f"{group}.{name}" not in _CONVERTERS:
        raise TypeError(f"{group}.{name}: a mapping option needs a converter in cli.arguments")
    default = None if info.default is PydanticUndefined else info.default
    if default is None and empty_takes is not None:  # an empty limit ends up with LimitSettings' default
        default = empty_takes.model_fields[name].default
    notes = [f"default: {default}"] if default is not None and value_type is not bool else []
    notes += ["sets it false"] if value_type is bool and not spelling.sets else []
    notes += ["repeatable"] if settings.get("action") in ("append", "extend") else []
    notes += _bounds(info)
    text = (info.description or "") + (f" ({'; '.join(notes)})" if notes else "")
    return OptionFlag(group, name, flag, text.replace("%", "%%"), settings)


def _settings(value_type: Any, spelling: Flag, flag: str) -> dict[str, Any]:
    """How argparse reads the value: a switch, one of some choices, a repeated or a typed value."""
    if value_type is bool:
        return {"action": "store_const", "const": spelling.sets}
    if get_origin(value_type) is Literal:
        return {"choices": get_args(value_type)}
    metavar = spelling.metavar or flag.lstrip("-").replace("-", "_").upper()
    if get_origin(value_type) is list and spelling.many:
        return {"action": "extend", "nargs": "+", "metavar": metavar}
    if get_origin(value_type) in (list, dict):
        return {"action": "append", "metavar": metavar}
    return {"type": value_type, "metavar": metavar}


def _value_type(annotation: Any) -> Any:
    """The type a flag's value has: ``int`` for ``int | None``, ``str`` for ``str | dict | None``."""
    members = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)
    present = [m for m in members if m is not type(None)]
    return bool if bool in present else present[0]


_BOUNDS = ((annotated_types.Ge, "ge", "at least"), (annotated_types.Gt, "gt", "above"),
           (annotated_types.Le, "le", "at most"), (annotated_types.Lt, "lt", "below"))


def _bounds(info: FieldInfo) -> list[str]:
    """A field's numeric bounds as words: ``at least 1``, ``above 0``."""
    return [f"{words} {getattr(m, attr)}" for m in info.metadata for kind, attr, words in _BOUNDS if isinstance(m, kind)]
