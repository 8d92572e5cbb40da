"""What each image model accepts and what it costs.

The facts live in ``data/models.toml`` (and an optional user file named by
``BANANAFLOW_MODELS_FILE``) rather than in code, because Google renames and retires
image models every few months; a new id should be a config change, not a release.
Validation happens here, before any call, so a bad ratio or size costs nothing.
"""
from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from bananaflow.errors import ConfigurationError

MODELS_FILE_ENV = "BANANAFLOW_MODELS_FILE"


@dataclass(frozen=True)
class ModelSpec:
    """Capabilities and list prices of one image model id."""

    id: str
    nickname: str
    sizes: tuple[str, ...]
    default_size: str
    sends_image_size: bool
    aspect_ratios: tuple[str, ...]
    price_per_image: Mapping[str, float]
    image_tokens: Mapping[str, int]
    image_token_usd_per_million: float
    text_output_usd_per_million: float
    input_usd_per_million: float
    input_image_tokens: int
    max_reference_images: int
    pixels_1k: Mapping[str, tuple[int, int]] = field(repr=False, default_factory=dict)

    def validate(self, aspect_ratio: str, image_size: str) -> None:
        """Refuse a ratio or size this model would answer with a 400, naming what it takes."""
        if aspect_ratio not in self.aspect_ratios:
            raise ConfigurationError(
                f"aspect ratio {aspect_ratio!r} is not accepted by {self.id}; "
                f"allowed: {', '.join(self.aspect_ratios)}"
            )
        if image_size not in self.sizes:
            hint = " (the K is uppercase)" if image_size.upper() in self.sizes else ""
            raise ConfigurationError(
                f"image size {image_size!r} is not accepted by {self.id}{hint}; "
                f"allowed: {', '.join(self.sizes)}"
            )

    def expected_pixels(self, aspect_ratio: str, image_size: str) -> tuple[int, int]:
        """Width and height the model returns for this ratio and size."""
        self.validate(aspect_ratio, image_size)
        w, h = self.pixels_1k[aspect_ratio]
        scale = {"512": 0.5, "1K": 1, "2K": 2, "4K": 4}[image_size]
        return int(w * scale), int(h * scale)

    def list_price(self, image_size: str, batch: bool = False) -> float:
        """Per-image list price in USD, for estimates and budget reservations."""
        price = float(self.price_per_image[image_size])
        return price / 2 if batch else price

    def cost_from_usage(
        self,
        *,
        prompt_tokens: int,
        image_tokens: int,
        other_output_tokens: int,
        batch: bool = False,
    ) -> float:
        """Bill as Google does: image tokens at the image rate, other output at the text
        rate, prompt (including reference images) at the input rate."""
        usd = (
            image_tokens * self.image_token_usd_per_million
            + other_output_tokens * self.text_output_usd_per_million
            + prompt_tokens * self.input_usd_per_million
        ) / 1_000_000
        return round(usd / 2 if batch else usd, 6)


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@lru_cache(maxsize=4)
def _load(user_file: str | None) -> dict[str, Any]:
    raw = tomllib.loads(resources.files("bananaflow.data").joinpath("models.toml").read_text())
    if user_file:
        path = Path(user_file)
        try:
            raw = _merge(raw, tomllib.loads(path.read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"cannot read models file {path} ({MODELS_FILE_ENV}): {exc}") from exc
    return raw


def model_table() -> dict[str, Any]:
    """The merged ``models.toml`` (with ``BANANAFLOW_MODELS_FILE``), for other tables than the
    image models' (the quality gate's judge models read theirs from here)."""
    return _load(os.environ.get(MODELS_FILE_ENV))


def default_model_id() -> str:
    return str(_load(os.environ.get(MODELS_FILE_ENV))["defaults"]["model"])


def known_models() -> list[str]:
    return sorted(_load(os.environ.get(MODELS_FILE_ENV))["models"])


def get_model(model_id: str) -> ModelSpec:
    """Look a model id up; an unknown id is a clear error listing the known ones."""
    raw = _load(os.environ.get(MODELS_FILE_ENV))
    entry = raw["models"].get(model_id)
    if entry is None:
        raise ConfigurationError(
            f"unknown model {model_id!r}; known: {', '.join(sorted(raw['models']))} "
            f"(add others in a TOML file named by {MODELS_FILE_ENV})"
        )
    pixels = {ratio: (int(w), int(h)) for ratio, (w, h) in raw["pixels"].items()}
    return ModelSpec(
        id=model_id,
        nickname=entry.get("nickname", model_id),
        sizes=tuple(entry["sizes"]),
        default_size=entry.get("default_size", entry["sizes"][0]),
        sends_image_size=bool(entry.get("sends_image_size", True)),
        aspect_ratios=tuple(entry["aspect_ratios"]),
        price_per_image=dict(entry["price_per_image"]),
        image_tokens=dict(entry["image_tokens"]),
        image_token_usd_per_million=float(entry["image_token_usd_per_million"]),
        text_output_usd_per_million=float(entry["text_output_usd_per_million"]),
        input_usd_per_million=float(entry["input_usd_per_million"]),
        input_image_tokens=int(entry.get("input_image_tokens", 560)),
        max_reference_images=int(entry.get("max_reference_images", 14)),
        pixels_1k=pixels,
    )
