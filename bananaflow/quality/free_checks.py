"""The checks that cost nothing and run before the judge: each can fail an image without a call.

* ``not_blank``: a blank or near-uniform image (a failed render, an all-white or all-grey
  canvas). Measured on a 64 px thumbnail: the share of pixels that differ visibly from the
  image's dominant colour. A product on white covers far more than the threshold even when small.
* ``not_duplicate``: the same image returned for two different products in one run (a relay
  cache, a stuck seed). A perceptual hash (``imagehash.phash``) tells "the same picture" despite
  re-encoding; a 4x4 colour thumbnail keeps colour variants of one design (red and blue shirts,
  which share a grey-level hash) apart. ``DuplicateWatcher`` is shared by the whole run,
  thread-safe, and keeps about 100 bytes per image.
* ``output_preset``: the preset's pixel rules (``landing.output_presets``), as a verdict.

Each returns a ``Verdict(stage="free")`` whose checks are named from ``FREE_CHECK_NAMES``.
"""
from __future__ import annotations

import io
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image

from bananaflow.landing.output_presets import QAReport
from bananaflow.landing.verdict import CheckResult, Verdict

__all__ = [
    "BLANK_MIN_DETAIL", "DUPLICATE_MAX_COLOUR_DIFF", "DUPLICATE_MAX_DISTANCE", "DuplicateWatcher",
    "check_not_blank", "free_verdict", "image_signature", "preset_verdict",
]

_THUMB = 64
#: A pixel counts as detail when a channel differs from the dominant colour by more than this.
_DETAIL_LEVEL = 12
#: Below this share of detail pixels an image is blank (a product on white is far above it).
BLANK_MIN_DETAIL = 0.005
#: Hamming distance of two 64-bit perceptual hashes still called the same picture.
DUPLICATE_MAX_DISTANCE = 4
#: Mean absolute difference (0-255) of the 4x4 colour thumbnails still called the same picture.
DUPLICATE_MAX_COLOUR_DIFF = 8.0


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (_THUMB * 4, _THUMB * 4))  # JPEG: decode at a fraction of the size
    return image.convert("RGB")


def check_not_blank(data: bytes) -> Verdict:
    """``not_blank`` on the encoded image."""
    thumb = np.asarray(_open(data).resize((_THUMB, _THUMB), Image.Resampling.BOX), dtype=np.int16)
    flat = thumb.reshape(-1, 3)
    values, counts = np.unique(flat // 8, axis=0, return_counts=True)
    in_bucket = (flat // 8 == values[int(np.argmax(counts))]).all(axis=1)
    dominant = flat[in_bucket].mean(axis=0).round().astype(np.int16)
    detail = float((np.abs(flat - dominant).max(axis=1) > _DETAIL_LEVEL).mean())
    if detail < BLANK_MIN_DETAIL:
        colour = tuple(int(c) for c in dominant)
        reason = f"blank or near-uniform image: {detail:.1%} of it differs from its main colour rgb{colour}"
        return free_verdict([CheckResult("not_blank", False, reason)])
    return free_verdict([CheckResult("not_blank", True, f"{detail:.0%} of the image has detail")])


@dataclass(frozen=True, slots=True)
class Signature:
    """What the watcher keeps of one image: its perceptual hash and a 4x4 colour thumbnail."""

    phash: int
    colours: bytes


def image_signature(data: bytes) -> Signature:
    image = _open(data)
    phash = int(str(imagehash.phash(image)), 16)
    colours = image.resize((4, 4), Image.Resampling.BOX).tobytes()
    return Signature(phash, colours)


def _colour_diff(a: bytes, b: bytes) -> float:
    return float(np.abs(np.frombuffer(a, np.uint8).astype(np.int16) - np.frombuffer(b, np.uint8)).mean())


class DuplicateWatcher:
    """The run's images by product, to catch one picture returned for two products.

    ``check(sku, variant, data)`` records the image as this (product, variant)'s latest (a
    regeneration replaces its failed predecessor) and fails it when a *different* product holds
    the same picture. Lookup is by the hash's four 16-bit quarters (two hashes within distance 3
    share one quarter exactly; 4 is caught when a quarter matches), so it stays fast for a whole
    catalog."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[tuple[str, str], Signature] = {}
        self._buckets: list[dict[int, set[tuple[str, str]]]] = [{} for _ in range(4)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._latest)

    def check(self, sku: str, variant: str, data: bytes) -> Verdict:
        signature = image_signature(data)
        key = (sku, variant)
        with self._lock:
            twin = self._twin(key, signature)
            self._store(key, signature)
        if twin is not None:
            reason = f"the same image was returned for product {twin[0]!r} ({twin[1]}) in this run"
            return free_verdict([CheckResult("not_duplicate", False, reason)])
        return free_verdict([CheckResult("not_duplicate", True, "no other product in this run has this image")])

    def _twin(self, key: tuple[str, str], signature: Signature) -> tuple[str, str] | None:
        seen: set[tuple[str, str]] = set()
        for index, bucket in enumerate(self._buckets):
            for other in bucket.get(_quarter(signature.phash, index), ()):
                if other in seen or other[0] == key[0]:
                    continue
                seen.add(other)
                kept = self._latest[other]
                if (bin(kept.phash ^ signature.phash).count("1") <= DUPLICATE_MAX_DISTANCE
                        and _colour_diff(kept.colours, signature.colours) <= DUPLICATE_MAX_COLOUR_DIFF):
                    return other
        return None

    def _store(self, key: tuple[str, str], signature: Signature) -> None:
        old = self._latest.get(key)
        if old is not None:
            for index, bucket in enumerate(self._buckets):
                holders = bucket.get(_quarter(old.phash, index))
                if holders is not None:
                    holders.discard(key)
                    if not holders:
                        del bucket[_quarter(old.phash, index)]
        self._latest[key] = signature
        for index, bucket in enumerate(self._buckets):
            bucket.setdefault(_quarter(signature.phash, index), set()).add(key)


def _quarter(value: int, index: int) -> int:
    return (value >> (16 * index)) & 0xFFFF


def preset_verdict(report: QAReport) -> Verdict:
    """The output preset's pixel checks (``Finished.report``) as the ``output_preset`` check."""
    if report.passed:
        measured = ", ".join(f"{k}={v}" for k, v in sorted(report.measurements.items()) if isinstance(v, (int, float)))
        return free_verdict([CheckResult("output_preset", True, f"{report.preset}: {measured}".rstrip(": "))])
    return free_verdict([CheckResult("output_preset", False, report.describe())])


def free_verdict(checks: Iterable[CheckResult]) -> Verdict:
    """One free-stage verdict from any of the free checks' results (passed when all passed)."""
    collected = tuple(checks)
    failed = [c.name for c in collected if not c.passed]
    note = f"failed: {', '.join(failed)}" if failed else ""
    return Verdict(not failed, collected, stage="free", model="", note=note)
