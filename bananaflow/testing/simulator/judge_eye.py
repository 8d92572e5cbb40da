"""The simulator judge's eye: what a careful person would see in the pixels, for the defects
the simulator can draw and the faults it can serve.

It never reads the defect script: it measures the image it was sent (which is the image *as
published*, after the output preset converted it: resized, JPEG, snapped to white), so a test of
the quality gate passes only if the right image reached the judge.

* garbled label text: rows crossed by many dark/light edges (a band of glyph-like marks); a
  clean simulator product has at most six per row (background, body, label);
* an extra object or hand: a patch of skin colour, a colour no simulator product has;
* a background that is not white when the request asks for white (a grey sweep);
* a blank image: nothing but one colour.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from bananaflow.testing.simulator.defects import SKIN

_MAX_SIDE = 1024
_DARK, _LIGHT = 50, 110  # glyph-dark below, label-light above; between is neither (no flicker on noise)
_GARBLED_ROW_EDGES = 12
_GARBLED_ROW_SHARE = 0.01
_SKIN_SHARE = 0.003
_SKIN_TOLERANCE = 14


@dataclass(frozen=True)
class Findings:
    """Failed checks with their reasons (check name -> reason); passed reasons for the rest."""

    failed: dict[str, str] = field(default_factory=dict)
    seen: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failed

    def reason(self, check: str) -> str:
        return self.failed.get(check) or self.seen.get(check) or "checked: as requested"

    def summary(self) -> str:
        if not self.failed:
            return "The image matches the product and the request."
        return "Failed: " + "; ".join(f"{name}: {why}" for name, why in self.failed.items())


def _load(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    if max(image.size) > _MAX_SIDE:
        image.thumbnail((_MAX_SIDE, _MAX_SIDE), Image.Resampling.BOX)
    return np.asarray(image, dtype=np.int16)


def inspect(data: bytes, request_text: str) -> Findings:
    """Look at the image judged (the first one of the request) as the request describes it."""
    try:
        pixels = _load(data)
    except Exception:  # noqa: BLE001 - an image the judge cannot open fails every check it affects
        return Findings({"same_product": "the image could not be opened"})
    failed: dict[str, str] = {}
    seen = {
        "same_product": "shape, colour and label placement match the reference",
        "text_and_labels": "the label is plain, no invented or garbled text",
        "single_product": "one unit of the product, nothing else in the frame",
        "clean_image": "no watermark, border or artifacts; the product is complete",
        "background_and_framing": "background and framing as requested",
    }
    if int(np.ptp(pixels)) < 8:
        failed["same_product"] = "the image is blank: no product is visible"
        return Findings(failed, seen)
    garbled_rows = _garbled_share(pixels)
    if garbled_rows >= _GARBLED_ROW_SHARE:
        failed["text_and_labels"] = (f"the label text is garbled: rows of unreadable glyph-like marks cross the label "
                                     f"({garbled_rows:.0%} of the image height); no letter can be read")
    skin = np.all(np.abs(pixels - np.array(SKIN)) <= _SKIN_TOLERANCE, axis=2)
    skin_share = float(skin.mean())
    if skin_share >= _SKIN_SHARE:
        rows, cols = np.nonzero(skin)
        where = _where(float(cols.mean()) / pixels.shape[1], float(rows.mean()) / pixels.shape[0])
        failed["single_product"] = (f"a hand appears over the product at the {where} ({skin_share:.1%} of the "
                                    "image); only the product was asked for")
    if "white" in request_text.lower():
        border = np.concatenate([pixels[:4].reshape(-1, 3), pixels[-4:].reshape(-1, 3),
                                 pixels[:, :4].reshape(-1, 3), pixels[:, -4:].reshape(-1, 3)])
        mean = border.mean(axis=0)
        if float(mean.min()) < 245:
            colour = ", ".join(str(int(round(c))) for c in mean)
            failed["background_and_framing"] = f"the background is grey (rgb {colour}), not the pure white asked for"
    return Findings(failed, seen)


def _garbled_share(pixels: np.ndarray) -> float:
    """Share of rows that switch between glyph-dark and label-light many times: text, and
    unreadable text on these flat simulator products. Pixels between the two levels keep the
    last state, so JPEG noise on a mid-grey body does not count as switching."""
    luminance = pixels @ np.array([299, 587, 114]) // 1000
    state = np.where(luminance < _DARK, 0, np.where(luminance > _LIGHT, 2, 1))
    rows = 0
    for row in state:
        definite = row[row != 1]
        if definite.size and np.count_nonzero(definite[1:] != definite[:-1]) >= _GARBLED_ROW_EDGES:
            rows += 1
    return rows / max(1, state.shape[0])


def _where(x: float, y: float) -> str:
    vertical = "top" if y < 0.4 else "bottom" if y > 0.6 else "middle"
    horizontal = "left" if x < 0.4 else "right" if x > 0.6 else "centre"
    return f"{vertical} {horizontal}"
