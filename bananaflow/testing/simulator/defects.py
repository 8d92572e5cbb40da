"""Scripted defects: chosen products' images come back with a flaw a judge can see.

``SimulatorConfig(defects={"model SKU-7": "once", "model SKU-9": "always:extra_object"})``: a
generated image whose prompt contains the key carries the defect, drawn into its pixels:

* ``garbled_text`` (the default): a band of dark glyph-like blocks across the label, the most
  reported failure of AI product photos (changed, unreadable label text);
* ``extra_object``: a hand (a skin-coloured palm and fingers) over the product's lower left.

``once`` draws it until the request carries corrections (``quality.feedback.CORRECTIONS_MARKER``,
what a regeneration with the judge's reasons sends), ``always`` on every attempt. The
simulator's judge finds these by looking at the pixels (``judge_eye``), never by reading this
script, so a test sees the whole loop: defect, failed check, corrected request, clean image.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping

from PIL import ImageDraw

from bananaflow.quality.feedback import CORRECTIONS_MARKER

DEFECT_MODES = ("once", "always")
DEFECT_KINDS = ("garbled_text", "extra_object")
#: The hand's colour: lighter than any product body or label the simulator draws (channels
#: stay under 215), darker than the white the presets snap to (248+).
SKIN = (233, 180, 140)
GLYPH = (24, 24, 28)


def parse_defect(value: str) -> tuple[str, str]:
    """``"once"`` / ``"always"`` with an optional ``:kind``, as ``(mode, kind)``."""
    mode, _, kind = value.partition(":")
    kind = kind or DEFECT_KINDS[0]
    if mode not in DEFECT_MODES or kind not in DEFECT_KINDS:
        raise ValueError(f"defect {value!r}: expected MODE[:KIND], MODE one of {DEFECT_MODES}, KIND one of {DEFECT_KINDS}")
    return mode, kind


def defect_for(defects: Mapping[str, str], prompt: str) -> str | None:
    """The defect kind an image made for ``prompt`` carries, or None. The first key (in
    order) contained in the prompt decides."""
    for key, value in defects.items():
        if key and key in prompt:
            mode, kind = parse_defect(value)
            if mode == "once" and CORRECTIONS_MARKER in prompt:
                return None
            return kind
    return None


def draw_defect(draw: ImageDraw.ImageDraw, kind: str, box: tuple[int, int, int, int], seed: str) -> None:
    """Draw ``kind`` onto the product inside ``box`` (left, top, right, bottom) of the canvas."""
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    if kind == "garbled_text":
        _glyph_band(draw, (left + round(w * 0.14), top + round(h * 0.47), right - round(w * 0.14),
                           top + round(h * 0.70)), seed)
    elif kind == "extra_object":
        palm = (left - round(w * 0.02), bottom - round(h * 0.34), left + round(w * 0.26), bottom - round(h * 0.04))
        draw.ellipse(palm, fill=SKIN)
        finger_w = max(2, round(w * 0.05))
        for i in range(4):
            x = palm[0] + round(w * 0.04) + i * (finger_w + max(1, round(w * 0.015)))
            draw.rounded_rectangle((x, palm[1] - round(h * 0.12), x + finger_w, palm[1] + round(h * 0.06)),
                                   radius=max(1, finger_w // 2), fill=SKIN)
    else:  # pragma: no cover - parse_defect refuses other kinds
        raise ValueError(kind)


def _glyph_band(draw: ImageDraw.ImageDraw, band: tuple[int, int, int, int], seed: str) -> None:
    """Two lines of letter-sized dark blocks of varying width: text no one can read."""
    left, top, right, bottom = band
    rows = 2
    line_h = max(2, (bottom - top) // (rows * 2 - 1))
    unit = max(2, (right - left) // 48)
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    for row in range(rows):
        y = top + row * line_h * 2
        x, i = left, 0
        while True:
            width = unit * (1 + digest[i % len(digest)] % 3)
            if x + width > right:
                break
            draw.rectangle((x, y, x + width - 1, y + line_h - 1), fill=GLYPH)
            x += width + unit
            i += 1
