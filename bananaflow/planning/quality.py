"""The quality gate's settings for one run, by the one merge rule.

The run's options (``--qa``, ``--qa-model``, ``--qa-max-attempts``: ``QualityOptions``) win;
a field left empty takes the job spec's ``qa:`` section, then the provider block's, then the
default: on, the default judge model of ``models.toml``, 2 regenerations. ``--qa off`` is the
run as it was before the gate: the output preset's checks only (``qa_failed``), with the job
spec's ``regenerate_once``.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bananaflow.landing.manifest import ManifestRow
from bananaflow.options import QualityOptions
from bananaflow.planning.jobspec import QASpec

__all__ = ["DEFAULT_JUDGE_MODEL", "DEFAULT_MAX_REGENERATIONS", "DEFAULT_REGENERATION_SHARE", "QualitySettings",
           "RegenerationShare", "default_judge_model", "regeneration_share", "resolve_quality"]

#: Regenerations of an image that failed its checks when nothing else says.
DEFAULT_MAX_REGENERATIONS = 2
#: The judge model when neither the run, the job spec, the block nor models.toml names one.
DEFAULT_JUDGE_MODEL = "gemini-3.8-flash"


@dataclass(frozen=True)
class QualitySettings:
    """What the gate does in this run."""

    enabled: bool = True
    model: str = DEFAULT_JUDGE_MODEL
    max_regenerations: int = DEFAULT_MAX_REGENERATIONS
    review: str = "off"
    review_timeout_hours: float = 24.0
    retry_rejected: bool = False


def default_judge_model() -> str:
    """``[defaults] judge_model`` of ``models.toml``, when it names one."""
    from bananaflow.providers.models import model_table

    defaults = model_table().get("defaults")
    value = defaults.get("judge_model") if isinstance(defaults, Mapping) else None
    return str(value) if value else DEFAULT_JUDGE_MODEL


#: The share of images expected to be made again after failed checks, when no earlier
#: manifest says: public reports of product-photo generation put first-try fidelity failures
#: (label text, colour drift, extra objects) around one image in five to seven.
DEFAULT_REGENERATION_SHARE = 0.15


@dataclass(frozen=True)
class RegenerationShare:
    """Regenerations per image to expect, and where the figure comes from."""

    share: float
    source: str


def regeneration_share(previous: Iterable[ManifestRow] | None) -> RegenerationShare:
    """From an earlier run's manifest (regenerations over the images the gate checked), else
    ``DEFAULT_REGENERATION_SHARE``."""
    if previous is not None:
        checked = regenerated = 0
        for row in previous:
            if row.verdicts:
                checked += 1
                regenerated += row.qa_attempts or 0
        if checked:
            return RegenerationShare(round(regenerated / checked, 3), f"the previous manifest ({checked} images checked)")
    return RegenerationShare(DEFAULT_REGENERATION_SHARE, "default: no previous manifest with quality-gate columns")


def resolve_quality(options: QualityOptions, spec: QASpec | None = None,
                    block: Mapping[str, Any] | None = None) -> QualitySettings:
    """The gate's settings: the run's options, else the job spec's, else the block's
    (``qa``, ``qa_model``, ``qa_max_attempts`` of an ``ImageProviderBlock``), else defaults."""
    spec = spec or QASpec()
    block = block or {}
    qa = options.qa or (("on" if spec.enabled else "off") if spec.enabled is not None else None) or block.get("qa")
    spec_attempts = spec.max_attempts if spec.max_attempts is not None else (1 if spec.regenerate_once else None)
    attempts = next((a for a in (options.qa_max_attempts, spec_attempts, block.get("qa_max_attempts"))
                     if a is not None), DEFAULT_MAX_REGENERATIONS)
    return QualitySettings(
        enabled=(qa or "on") == "on",
        model=options.qa_model or spec.model or block.get("qa_model") or default_judge_model(),
        max_regenerations=int(attempts),
        review=options.review or "off",
        review_timeout_hours=options.review_timeout_hours or 24.0,
        retry_rejected=options.retry_rejected,
    )
