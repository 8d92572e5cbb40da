"""Realtime or batch: what a job costs and how long it may take either way, and which to use.

``bananaflow estimate`` shows both columns (``estimate_batch`` is the batch one); ``auto``
mode takes batch when the work is large enough to be worth a wait and the job's deadline
leaves Google's whole batch window, realtime otherwise.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from bananaflow.errors import ConfigurationError
from bananaflow.planning.batch_sizing import BatchLimits, expected_result_bytes
from bananaflow.providers.models import default_model_id, get_model, vertex_batch_models
from bananaflow.providers.vertex_settings import vertex_batch_location

MODES = ("realtime", "batch", "auto")
#: Google completes a batch "within 24 hours"; a deadline shorter than this may be missed.
BATCH_WINDOW_HOURS = 24.0
#: Below this many images, the wait for a batch is not worth half of a small bill.
AUTO_BATCH_MIN_ITEMS = 100


@dataclass(frozen=True)
class BatchEstimate:
    """Cost and time of a job in Batch mode, next to its realtime list price."""

    images: int
    batches: int
    cost_usd: float
    realtime_cost_usd: float
    max_hours: float = BATCH_WINDOW_HOURS

    @property
    def saving_usd(self) -> float:
        return round(self.realtime_cost_usd - self.cost_usd, 4)


def estimate_batch(
    images: int, model: str, image_size: str, limits: BatchLimits = BatchLimits()
) -> BatchEstimate:
    """Batch cost at half the list price, how many batches the work makes, and the
    longest it may take (Google's window; most batches end far sooner, but no sooner
    time is promised)."""
    spec = get_model(model)
    per_batch_by_bytes = max(1, limits.max_result_bytes // expected_result_bytes(image_size))
    per_batch = max(1, min(limits.max_items, per_batch_by_bytes))
    return BatchEstimate(
        images=images,
        batches=math.ceil(images / per_batch) if images else 0,
        cost_usd=round(images * spec.list_price(image_size, batch=True), 4),
        realtime_cost_usd=round(images * spec.list_price(image_size), 4),
    )


@dataclass(frozen=True)
class ModeChoice:
    mode: str  # "realtime" or "batch"
    reason: str


def choose_mode(
    requested: str,
    items: int,
    *,
    provider_kind: str = "gemini",
    deadline_hours: float | None = None,
    min_batch_items: int = AUTO_BATCH_MIN_ITEMS,
    models: Sequence[str] = (),
    location: str | None = None,
) -> ModeChoice:
    """The mode a run uses. ``batch`` on a provider without Batch mode is a configuration
    error rather than a silent switch to full price."""
    if requested not in MODES:
        raise ConfigurationError(f"mode {requested!r} is unknown; use one of {', '.join(MODES)}")
    if deadline_hours is not None and deadline_hours <= 0:
        raise ConfigurationError(f"deadline of {deadline_hours} hours must be positive")
    if requested == "batch":
        if provider_kind == "vertex":
            return ModeChoice("batch", vertex_batch_reason(models, location))
        if provider_kind != "gemini":
            raise ConfigurationError(
                "batch mode needs Google's native Gemini API (BANANAFLOW_PROVIDER=gemini) or Vertex AI; "
                "OpenAI-compatible relays have no Batch mode: use --mode realtime or auto"
            )
        return ModeChoice("batch", "batch mode requested: half price, results within 24 h")
    if requested == "realtime":
        return ModeChoice("realtime", "realtime mode requested")
    if provider_kind == "vertex" and (refused := _vertex_refuses(models)):
        return ModeChoice("realtime", f"auto: Vertex AI batch prediction does not take {refused}")
    if provider_kind not in ("gemini", "vertex"):
        return ModeChoice("realtime", f"auto: the {provider_kind} provider has no Batch mode")
    if items < min_batch_items:
        return ModeChoice("realtime", f"auto: {items} images is below the batch threshold of {min_batch_items}")
    if deadline_hours is not None and deadline_hours < BATCH_WINDOW_HOURS:
        return ModeChoice(
            "realtime", f"auto: the {deadline_hours:g} h deadline is shorter than the {BATCH_WINDOW_HOURS:g} h batch window"
        )
    if provider_kind == "vertex":
        return ModeChoice("batch", f"auto: {items} images, no deadline inside {BATCH_WINDOW_HOURS:g} h; "
                                   + vertex_batch_reason(models, location))
    return ModeChoice("batch", f"auto: {items} images and no deadline inside {BATCH_WINDOW_HOURS:g} h: batch at half price")


def _vertex_refuses(models: Sequence[str]) -> str | None:
    """The first of ``models`` (the default model when none) Vertex batch prediction does not take."""
    return next((m for m in (models or (default_model_id(),)) if not get_model(m).vertex_batch), None)


def vertex_batch_reason(models: Sequence[str], location: str | None) -> str:
    """Why batch on Vertex, and where it runs; one line refusing a model Vertex batch does not take."""
    if refused := _vertex_refuses(models):
        raise ConfigurationError(
            f"--mode batch on Vertex AI: batch prediction does not take {refused}; it takes "
            f"{', '.join(vertex_batch_models())} (use one with --model, or --mode realtime)"
        )
    region = vertex_batch_location(location, os.environ)
    where = (f"in {region}: batch jobs are regional and the run's location {location} has none"
             if location and location != region else f"in {region}")
    return f"Vertex AI batch prediction, half price, results within 24 h; jobs run {where}"
