"""Deterministic stand-in product shots of an exact pixel size.

The pipeline's QA checks a pure white border and a product filling about 88% of the
frame, and the client checks the pixel size against ``bananaflow.providers.models``; so the
simulator's image must pass the same checks a good real image would. The shape is drawn
on a small canvas and enlarged with NEAREST (no blending, so the background stays exactly
255 and encoding a 4096x4096 image stays fast), and encoded bytes are cached because
tests ask for the same image again and again.
"""
from __future__ import annotations

import hashlib
import io
from functools import lru_cache

from PIL import Image, ImageDraw

from bananaflow.testing.simulator.defects import draw_defect

WHITE = (255, 255, 255)
FILL_FRACTION = 0.88  # share of width and height the product's bounding box spans
_CANVAS_LONG_SIDE = 400  # the shape is drawn at most this large, then enlarged


def product_colour(prompt: str) -> tuple[int, int, int]:
    """A colour derived from the prompt, dark enough to never pass for background."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    return (digest[0] % 200, digest[1] % 200, digest[2] % 200)


def _lighter(colour: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    r, g, b = (int(c + (230 - c) * amount) for c in colour)
    return r, g, b


def _darker(colour: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    r, g, b = (int(c * (1 - amount)) for c in colour)
    return r, g, b


def _draw_product(width: int, height: int, prompt: str, background: tuple[int, int, int] = WHITE,
                  defect: str | None = None) -> Image.Image:
    """A bottle, box or jar (picked by the prompt hash) on white (or ``background``), on a
    small canvas of the requested aspect ratio; ``defect`` (``defects.DEFECT_KINDS``) drawn on it."""
    scale = max(width, height) / _CANVAS_LONG_SIDE
    cw, ch = max(8, round(width / scale)), max(8, round(height / scale))
    canvas = Image.new("RGB", (cw, ch), background)
    draw = ImageDraw.Draw(canvas)
    colour = product_colour(prompt)
    left, top = round(cw * (1 - FILL_FRACTION) / 2), round(ch * (1 - FILL_FRACTION) / 2)
    right, bottom = cw - left - 1, ch - top - 1
    w, h = right - left, bottom - top
    variant = hashlib.sha256(prompt.encode("utf-8")).digest()[3] % 3
    if variant == 0:  # bottle: cap, neck, body
        cap = (left + w * 0.38, top, left + w * 0.62, top + h * 0.12)
        body = (left, top + h * 0.22, right, bottom)
        draw.rectangle(cap, fill=_darker(colour, 0.4))
        draw.rectangle((left + w * 0.3, top + h * 0.1, left + w * 0.7, top + h * 0.24), fill=colour)
        draw.rounded_rectangle(body, radius=max(1, round(min(w, h) * 0.1)), fill=colour)
    elif variant == 1:  # box: front and lid
        draw.rectangle((left, top, right, top + h * 0.15), fill=_darker(colour, 0.3))
        draw.rectangle((left, top + h * 0.15, right, bottom), fill=colour)
    else:  # jar: wide lid on a rounded body
        draw.rectangle((left + w * 0.1, top, right - w * 0.1, top + h * 0.18), fill=_darker(colour, 0.4))
        draw.rounded_rectangle((left, top + h * 0.16, right, bottom), radius=max(1, round(min(w, h) * 0.2)), fill=colour)
    _draw_pattern(draw, (left, top + h * 0.24, right, bottom), prompt, colour)
    draw.rectangle((left + w * 0.12, top + h * 0.45, right - w * 0.12, top + h * 0.72), fill=_lighter(colour, 0.5))
    if defect is not None:
        draw_defect(draw, defect, (left, top, right, bottom), prompt)
    return canvas.resize((width, height), Image.Resampling.NEAREST)


def _draw_pattern(draw: ImageDraw.ImageDraw, body: tuple[float, float, float, float], prompt: str,
                  colour: tuple[int, int, int]) -> None:
    """A 4x4 grid of darker and lighter panels picked by the prompt's hash: two products are as different
    to a perceptual hash as two real products are, so the quality gate's duplicate check
    (``quality.free_checks``) is not tripped by three shapes in random colours."""
    digest = hashlib.sha256(b"pattern:" + prompt.encode("utf-8")).digest()
    left, top, right, bottom = body
    cell_w, cell_h = (right - left) / 4, (bottom - top) / 4
    for index in range(16):
        shade = digest[index] % 3  # none, darker or lighter
        if shade:
            column, row = index % 4, index // 4
            fill = _darker(colour, 0.35) if shade == 1 else _lighter(colour, 0.35)
            draw.rectangle((left + column * cell_w, top + row * cell_h, left + (column + 1) * cell_w - 1,
                            top + (row + 1) * cell_h - 1), fill=fill)


@lru_cache(maxsize=16)
def render_image(
    prompt: str, width: int, height: int, mime_type: str, background: tuple[int, int, int] = WHITE,
    defect: str | None = None,
) -> bytes:
    """Encoded bytes (PNG or JPEG) of the product shot for ``prompt`` at exactly
    ``width`` x ``height``. Pure function of its arguments, so the same prompt, model,
    ratio and size always give the same bytes."""
    image = _draw_product(width, height, prompt, background, defect)
    out = io.BytesIO()
    if mime_type == "image/png":
        image.save(out, format="PNG", compress_level=1)
    else:
        image.save(out, format="JPEG", quality=90)
    return out.getvalue()
