"""The job spec: which images to make for every product, in a file the shop keeps in git.

```yaml
defaults: {model: gemini-3-pro-image, size: 2K}
variants:
  - {name: main, template: prompts/main.j2, aspect: "1:1", preset: amazon-main, reference: true}
  - {name: lifestyle, template: prompts/lifestyle.j2, aspect: "4:5"}
  - {name: banner, template: prompts/banner.j2, aspect: "16:9", size: 4K}
overrides:
  - {match: "Home > Kitchen", templates: {lifestyle: prompts/kitchen_lifestyle.j2}}
references: {field: image_link, group_reference: true}
qa: {regenerate_once: true}
writeback: {format: shopify, presign_expiry_s: 604800}
```

Everything is checked when the file is loaded (unknown keys, model/ratio/size the model
refuses, templates that don't exist or don't parse), so a typo costs nothing. Sections are
separate models: a new kind of setting (say ``mode: batch``) is one more field here.
Template paths are relative to the job file, so the spec and its prompts move together.
"""
from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bananaflow.errors import ConfigurationError, TemplateError
from bananaflow.options import ImageOptions, RunOptions
from bananaflow.planning.prompts import PromptTemplate
from bananaflow.providers.models import default_model_id, get_model

_VARIANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Columns searched, in order, for the category an override matches on.
CATEGORY_FIELDS = ("product_type", "category", "google_product_category", "Product Category", "Type")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Defaults(_Strict):
    model: str | None = None
    size: str = "1K"
    aspect: str = Field("1:1", alias="aspect_ratio")


class VariantSpec(_Strict):
    """One image per product: its template (a file, or ``prompt`` inline), shape and preset."""

    name: str
    template: str | None = None
    prompt: str | None = None
    aspect: str | None = Field(None, alias="aspect_ratio")
    size: str | None = None
    model: str | None = None
    preset: str | None = None
    reference: bool | None = None
    per_color: bool | None = Field(
        None, description="One image per distinct colour of a product with a colour option (Shopify Variant Image)."
    )

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _VARIANT_NAME.match(value):
            raise ValueError("use letters, digits, '.', '-' or '_' (it becomes part of the object key), at most 64")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> VariantSpec:
        if self.template and self.prompt:
            raise ValueError("give either template (a file) or prompt (inline text), not both")
        return self


class OverrideSpec(_Strict):
    """Other templates for products whose category starts with ``match``."""

    match: str
    field: str | None = None
    templates: dict[str, str] = {}
    prompts: dict[str, str] = {}


class ReferenceSpec(_Strict):
    """Photos of the real product sent with the prompt (edit mode)."""

    enabled: bool = False
    field: str = "image_link"
    additional_field: str | None = None
    max_images: int | None = Field(None, ge=1)
    max_side: int = Field(2048, ge=64, le=4096)
    group_field: str = "item_group_id"
    group_reference: bool = False


class QASpec(_Strict):
    """The quality gate for this job (``bananaflow.planning.quality``): the run's ``--qa``,
    ``--qa-model`` and ``--qa-max-attempts`` win over these. ``regenerate_once`` is the older
    spelling (before the judge) of ``max_attempts: 1``; older specs keep reading."""

    enabled: bool | None = None
    model: str | None = None
    max_attempts: int | None = Field(None, ge=0, le=5)
    regenerate_once: bool = False


class RunSpec(_Strict):
    """How the job is sent: realtime calls, Gemini Batch mode (half price, within 24 h) or
    auto; ``deadline_hours`` is when the job must be done (auto picks realtime under 24).
    The command line's ``--mode``/``--deadline-hours`` win over these."""

    mode: Literal["realtime", "batch", "auto"] = "realtime"
    deadline_hours: float | None = Field(None, gt=0)


class WritebackSpec(_Strict):
    """Where the new image URLs go: a Shopify import CSV or a Merchant Center supplemental
    feed, with a public base URL or presigned URLs valid for ``presign_expiry_s``."""

    format: Literal["shopify", "merchant"] | None = None
    public_base_url: str | None = None
    presign_expiry_s: int = Field(7 * 24 * 3600, ge=60, le=7 * 24 * 3600)
    main_variant: str | None = None

    @field_validator("public_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as https://cdn.example.com/images/")
        return value


class JobSpec(_Strict):
    """The whole file. New kinds of settings (e.g. a run ``mode``) are new fields or
    sections here; unknown keys are refused so a typo never silently does nothing."""

    version: Literal[1] = 1
    defaults: Defaults = Defaults()
    variants: list[VariantSpec] = Field(min_length=1)
    overrides: list[OverrideSpec] = []
    references: ReferenceSpec = ReferenceSpec()
    qa: QASpec = QASpec()
    writeback: WritebackSpec = WritebackSpec()
    run: RunSpec = RunSpec()

    @model_validator(mode="after")
    def _consistent(self) -> JobSpec:
        names = [v.name for v in self.variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(dupes)}")
        for i, override in enumerate(self.overrides):
            unknown = sorted((set(override.templates) | set(override.prompts)) - set(names))
            if unknown:
                raise ValueError(f"overrides[{i}] names variants that are not defined: {', '.join(unknown)}")
        if self.writeback.main_variant and self.writeback.main_variant not in names:
            raise ValueError(f"writeback.main_variant '{self.writeback.main_variant}' is not a variant")
        return self


@dataclass(frozen=True)
class ResolvedVariant:
    """A variant with defaults applied and its template compiled."""

    name: str
    template: PromptTemplate
    aspect_ratio: str
    image_size: str
    model: str
    preset: str
    reference: bool
    per_color: bool = False


@dataclass(frozen=True)
class CategoryOverride:
    match: tuple[str, ...]
    fields: tuple[str, ...]
    templates: dict[str, PromptTemplate]


@dataclass(frozen=True)
class Job:
    """A loaded, checked job: what the planner needs."""

    spec: JobSpec
    variants: tuple[ResolvedVariant, ...]
    overrides: tuple[CategoryOverride, ...]
    source: str = ""

    def template_for(self, variant: ResolvedVariant, fields: dict[str, str]) -> PromptTemplate:
        """The most specific override whose category prefix matches, else the variant's own."""
        best: tuple[int, PromptTemplate] | None = None
        for override in self.overrides:
            template = override.templates.get(variant.name)
            if template is None:
                continue
            category = next((fields[f] for f in override.fields if fields.get(f)), "")
            if _path_starts_with(_category_path(category), override.match):
                if best is None or len(override.match) > best[0]:
                    best = (len(override.match), template)
        return best[1] if best else variant.template


def _category_path(value: str) -> tuple[str, ...]:
    """``Home > Kitchen > Mugs`` (Google, Shopify) or ``Home/Kitchen`` as lower-cased parts."""
    return tuple(p.strip().lower() for p in re.split(r"\s*[>/]\s*", value) if p.strip())


def _path_starts_with(path: tuple[str, ...], prefix: tuple[str, ...]) -> bool:
    return bool(prefix) and path[: len(prefix)] == prefix


def build_job(options: RunOptions | None = None, *, model: str | None = None, public_base_url: str | None = None) -> Job:
    """The one way to a ``Job``, for the CLI, the flows, their previews and tests alike.

    The spec is ``options.images.job`` (a YAML/TOML file, or the spec itself as data, as a
    Prefect parameter gives it), else the single-template options as a one-variant spec;
    either is validated, given the run's write-back options and compiled by the same steps.
    ``model`` (the run's, already resolved against blocks and the environment) applies to
    variants when the spec names none; ``public_base_url`` wins over ``options.delivery``'s."""
    options = options or RunOptions()
    images = options.images
    if images.job and images.template:
        raise ConfigurationError("give either a job spec or a template, not both: name the template in the job spec")
    data, origin = _spec_data(images)
    spec = _validated(data, origin)
    delivery = options.delivery
    spec = _with_writeback(spec, format=delivery.writeback, public_base_url=public_base_url or delivery.public_base_url)
    return _resolve(spec, origin, default_model=model or images.model)


def load_job(path: str | Path, *, model: str | None = None) -> Job:
    """The job a spec file describes: ``build_job`` with only ``images.job`` set."""
    return build_job(RunOptions(images=ImageOptions(job=str(path))), model=model)


def check_fallback_models(models: Iterable[str], images: ImageOptions) -> None:
    """Fail before any call when a fallback model would refuse the run's ratio or size."""
    for model in models:
        get_model(model).validate(images.aspect_ratio, images.image_size)


#: ``Job.source`` of the job the single-template options describe.
COMMAND_LINE = "command line"


@dataclass(frozen=True)
class _Origin:
    """Where a spec came from: what its errors begin with and where its template paths start.
    The single-template options (``from_options``) name no spec or variant, so their errors
    name neither: the user gave ``--aspect``, not a variant."""

    source: str
    label: str
    base_dir: Path | None = None
    from_options: bool = False


def _spec_data(images: ImageOptions) -> tuple[dict[str, Any], _Origin]:
    """The spec as data, and where it came from."""
    if isinstance(images.job, dict):
        return images.job, _Origin("(parameter)", "job spec (parameter)")
    if images.job:
        file = Path(images.job)
        return _read_spec_file(file), _Origin(str(file), f"job spec {file}", base_dir=file.parent)
    variant = {
        "name": images.variant, "template": images.template, "aspect": images.aspect_ratio,
        "size": images.image_size, "preset": images.output_preset,
    }
    return {"variants": [variant]}, _Origin(COMMAND_LINE, "image options", from_options=True)


def _read_spec_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text("utf-8-sig")
    except FileNotFoundError:
        raise ConfigurationError(f"job spec {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read job spec {path}: {exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"job spec {path} is not valid TOML: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigurationError(f"job spec {path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"job spec {path} must be a mapping with a 'variants' list")
    return data


def _validated(data: dict[str, Any], origin: _Origin) -> JobSpec:
    """The spec, or one line naming each bad setting (unknown keys are refused: a typo never does nothing)."""
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        # the options' one variant is the whole spec: its fields are the options' own
        skip = 2 if origin.from_options else 0
        raise ConfigurationError(_format_validation(exc, origin.label, skip=skip)) from None


def _format_validation(error: ValidationError, label: str, *, skip: int = 0) -> str:
    """``{label}: loc: message; ...`` for the first five errors, ``skip`` leading loc parts dropped."""
    lines = []
    for item in error.errors()[:5]:
        parts = item["loc"][skip:]
        loc = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in parts).replace(".[", "[")
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling)"
        lines.append(f"{loc or '(top)'}: {message}")
    return f"{label}: " + "; ".join(lines)


def _with_writeback(spec: JobSpec, *, format: str | None, public_base_url: str | None) -> JobSpec:
    """``spec`` with the run's write-back options taking precedence over its own."""
    changes = {k: v for k, v in (("format", format), ("public_base_url", public_base_url)) if v is not None}
    if not changes:
        return spec
    try:
        writeback = WritebackSpec.model_validate({**spec.writeback.model_dump(), **changes})
    except ValidationError as exc:
        raise ConfigurationError(_format_validation(exc, "write-back options")) from None
    return spec.model_copy(update={"writeback": writeback})


def _template(path: str | None, inline: str | None, name: str, base_dir: Path | None) -> PromptTemplate:
    if inline is not None:
        return PromptTemplate.from_string(inline, name=f"{name} (inline)")
    if path is None:
        return PromptTemplate.default()
    file = Path(path)
    if not file.is_absolute() and base_dir is not None:
        file = base_dir / file
    return PromptTemplate.from_file(file)


def _resolve(spec: JobSpec, origin: _Origin, *, default_model: str | None) -> Job:
    """Apply defaults, check every model/ratio/size and preset, compile every template."""
    try:
        variants = tuple(_resolve_variant(spec, v, origin, default_model) for v in spec.variants)
        overrides = tuple(
            CategoryOverride(
                match=_category_path(o.match),
                fields=(o.field,) if o.field else CATEGORY_FIELDS,
                templates={
                    **{n: _template(p, None, n, origin.base_dir) for n, p in o.templates.items()},
                    **{n: _template(None, t, n, origin.base_dir) for n, t in o.prompts.items()},
                },
            )
            for o in spec.overrides
        )
    except TemplateError as exc:
        if origin.from_options:  # --template's own error: it names the file
            raise
        raise ConfigurationError(f"{origin.label}: {exc.message}") from None
    return Job(spec=spec, variants=variants, overrides=overrides, source=origin.source)


def _resolve_variant(spec: JobSpec, v: VariantSpec, origin: _Origin, default_model: str | None) -> ResolvedVariant:
    variant = ResolvedVariant(
        name=v.name,
        template=_template(v.template, v.prompt, v.name, origin.base_dir),
        aspect_ratio=v.aspect or spec.defaults.aspect,
        image_size=v.size or spec.defaults.size,
        model=v.model or spec.defaults.model or default_model or default_model_id(),
        preset=v.preset or "",
        reference=spec.references.enabled if v.reference is None else v.reference,
        per_color=bool(v.per_color),
    )
    try:
        get_model(variant.model).validate(variant.aspect_ratio, variant.image_size)
    except ConfigurationError as exc:
        raise ConfigurationError(exc.message if origin.from_options else f"variant '{v.name}': {exc.message}") from None
    if variant.preset:
        from bananaflow.landing.output_presets import get_preset

        get_preset(variant.preset)
    return variant
