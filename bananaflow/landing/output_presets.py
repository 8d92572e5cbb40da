"""Marketplace output presets: convert what the model returned and check it, with Pillow.

A generated image is not yet a listing image. Amazon wants exact RGB 255 white (the model
returns 250-254 "almost white" and no transparency), the product filling at least 85% of
the frame, 1000+ px and JPEG in sRGB; Shopify wants 2048 squares; Taobao and JD want
800x800. Each preset converts the image to what its marketplace takes and measures the
result, so an image that would be rejected at upload is caught here, with numbers a person
can act on (``border_white=0.62 < 0.98``), instead of by a marketplace a day later.

Measured on the converted image:
* ``border_white``: share of pixels in the outer band (1% of the short side, at least 2 px)
  that are exactly (255, 255, 255);
* ``fill``: the product's bounding box (every pixel that is not exact white) over the frame,
  the larger of its width and height shares, as marketplace tools measure it;
* ``long_side``, ``width``, ``height``, ``bytes`` and the format.

Figures that come only from third-party tools (Taobao, JD) are plain data here, so a shop
can change them with ``with_overrides``.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageOps

from bananaflow.errors import ConfigurationError

WHITE = (255, 255, 255)
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_SRGB_BYTES = _SRGB.tobytes()
THUMBNAIL_SIDE = 256


@dataclass(frozen=True)
class OutputPreset:
    """What one marketplace takes, as conversion steps and checks."""

    name: str
    description: str
    format: str = "JPEG"
    square: int | None = None  # pad to a white square and scale to this side
    max_long_side: int | None = None  # scale down (never up) beyond this
    white_background: bool = False  # snap near-white to exact white, measure the border
    snap_threshold: int = 248  # every channel at or above this becomes 255
    min_border_white: float = 0.98
    min_fill: float | None = None
    min_long_side: int | None = None
    min_short_side: int | None = None
    max_pixels: int | None = None
    max_bytes: int | None = None
    quality: int = 92

    @property
    def mime_type(self) -> str:
        return "image/jpeg" if self.format == "JPEG" else "image/png"

    @property
    def extension(self) -> str:
        return "jpg" if self.format == "JPEG" else "png"


PRESETS: dict[str, OutputPreset] = {
    p.name: p
    for p in (
        OutputPreset(
            "amazon-main",
            "Amazon main image: exact white background, product fills 85%+, 1000+ px, JPEG sRGB",
            white_background=True,
            min_fill=0.85,
            min_long_side=1000,
            max_long_side=10_000,
        ),
        OutputPreset("shopify", "Shopify: 2048x2048 square JPEG", square=2048, max_pixels=20_000_000),
        OutputPreset(
            "google-merchant",
            "Google Merchant Center: 500x500+ (1500 recommended), at most 64 MP and 16 MB, JPEG",
            min_short_side=500,
            max_pixels=64_000_000,
            max_bytes=16 * 1024 * 1024,
        ),
        OutputPreset(
            "taobao-main",
            "Taobao main image: 800x800 white-background JPEG, at most 3 MB",
            square=800,
            white_background=True,
            max_bytes=3 * 1024 * 1024,
        ),
        OutputPreset(
            "jd-main",
            "JD main image: 800x800 square, white background, no border, at most 5 MB",
            square=800,
            white_background=True,
            max_bytes=5 * 1024 * 1024,
        ),
    )
}


def get_preset(name: str) -> OutputPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigurationError(f"unknown output preset {name!r}; known: {', '.join(PRESETS)}") from None


@dataclass
class QAReport:
    """The measured numbers and, if any check failed, what failed and what it needed."""

    preset: str
    measurements: dict[str, Any]
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_json(self) -> str:
        return json.dumps({"preset": self.preset, "passed": self.passed, **self.measurements}, sort_keys=True)

    def describe(self) -> str:
        return f"{self.preset} QA failed: " + "; ".join(self.problems)


@dataclass(frozen=True)
class Derivative:
    """One converted image to store beside the original, named by what it is for."""

    name: str
    data: bytes = field(repr=False)
    mime_type: str
    extension: str
    width: int
    height: int


@dataclass
class Finished:
    report: QAReport
    derivatives: list[Derivative]


def _to_srgb_rgb(image: Image.Image) -> Image.Image:
    """RGB in sRGB: embedded profiles converted, transparency flattened onto white (the
    model returns none, but uploaded references and relays sometimes do)."""
    icc = image.info.get("icc_profile")
    if icc and icc != _SRGB_BYTES:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(image.convert("RGB"), source, _SRGB, outputMode="RGB")
            image = converted if converted is not None else image  # None only when converting in place
        except (ImageCms.PyCMSError, OSError):
            pass  # an unreadable profile: treat the pixels as sRGB, as browsers do
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, WHITE)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def _snap_white(image: Image.Image, threshold: int) -> Image.Image:
    pixels = np.array(image)
    near = (pixels >= threshold).all(axis=2)
    pixels[near] = 255
    return Image.fromarray(pixels, "RGB")


def _measure(image: Image.Image) -> dict[str, Any]:
    pixels = np.asarray(image)
    white = (pixels == 255).all(axis=2)
    height, width = white.shape
    band = max(2, round(min(width, height) * 0.01))
    border = np.concatenate(
        [white[:band].ravel(), white[-band:].ravel(), white[band:-band, :band].ravel(), white[band:-band, -band:].ravel()]
    )
    rows = np.flatnonzero(~white.all(axis=1))
    cols = np.flatnonzero(~white.all(axis=0))
    if rows.size:
        fill = max((rows[-1] - rows[0] + 1) / height, (cols[-1] - cols[0] + 1) / width)
    else:
        fill = 0.0
    return {
        "width": width,
        "height": height,
        "long_side": max(width, height),
        "border_white": round(float(border.mean()), 4),
        "fill": round(float(fill), 4),
    }


def _encode(image: Image.Image, preset: OutputPreset) -> bytes:
    out = io.BytesIO()
    if preset.format == "JPEG":
        image.save(out, format="JPEG", quality=preset.quality, optimize=True, icc_profile=_SRGB_BYTES)
    else:
        image.save(out, format="PNG", icc_profile=_SRGB_BYTES)
    return out.getvalue()


def convert(data: bytes, preset: OutputPreset) -> tuple[Image.Image, bytes]:
    """The image as ``preset`` wants it: sRGB RGB, white snapped, squared, sized, encoded."""
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        image = _to_srgb_rgb(opened)
    if preset.white_background:
        image = _snap_white(image, preset.snap_threshold)
    if preset.square:
        side = max(image.size)
        image = ImageOps.pad(image, (side, side), color=WHITE, method=Image.Resampling.LANCZOS)
        if side != preset.square:
            image = image.resize((preset.square, preset.square), Image.Resampling.LANCZOS)
        if preset.white_background:  # resampling blurs the edge of white into 254s
            image = _snap_white(image, preset.snap_threshold)
    elif preset.max_long_side and max(image.size) > preset.max_long_side:
        image = ImageOps.contain(image, (preset.max_long_side, preset.max_long_side), Image.Resampling.LANCZOS)
    return image, _encode(image, preset)


def check(image: Image.Image, encoded: bytes, preset: OutputPreset) -> QAReport:
    """Measure the converted image against the preset's rules."""
    m = _measure(image)
    m["bytes"] = len(encoded)
    m["format"] = preset.format
    m["color_space"] = "sRGB"
    problems = []
    if preset.white_background and m["border_white"] < preset.min_border_white:
        problems.append(f"border_white={m['border_white']} < {preset.min_border_white} (background is not pure white)")
    if preset.min_fill is not None and m["fill"] < preset.min_fill:
        problems.append(f"fill={m['fill']} < {preset.min_fill} (product too small in the frame)")
    if preset.min_long_side and m["long_side"] < preset.min_long_side:
        problems.append(f"long_side={m['long_side']} < {preset.min_long_side} px")
    if preset.min_short_side and min(m["width"], m["height"]) < preset.min_short_side:
        problems.append(f"short_side={min(m['width'], m['height'])} < {preset.min_short_side} px")
    if preset.max_pixels and m["width"] * m["height"] > preset.max_pixels:
        problems.append(f"pixels={m['width'] * m['height']} > {preset.max_pixels}")
    if preset.max_bytes and m["bytes"] > preset.max_bytes:
        problems.append(f"bytes={m['bytes']} > {preset.max_bytes}")
    return QAReport(preset.name, m, problems)


def thumbnail(image: Image.Image, side: int = THUMBNAIL_SIDE) -> Derivative:
    small = ImageOps.contain(image, (side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=85, icc_profile=_SRGB_BYTES)
    return Derivative("thumb", out.getvalue(), "image/jpeg", "jpg", small.width, small.height)


def finish(data: bytes, preset: OutputPreset | str) -> Finished:
    """Convert, check and make the derivatives (the preset's image and a thumbnail)."""
    preset = get_preset(preset) if isinstance(preset, str) else preset
    image, encoded = convert(data, preset)
    report = check(image, encoded, preset)
    derivatives = [
        Derivative(preset.name, encoded, preset.mime_type, preset.extension, image.width, image.height),
        thumbnail(image),
    ]
    return Finished(report, derivatives)


def with_overrides(name: str, **changes: Any) -> OutputPreset:
    """A shipped preset with some rules changed (for figures that are only estimates)."""
    return replace(get_preset(name), **changes)
