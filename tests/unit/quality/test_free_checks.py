"""Free checks: blank images, one picture for two products, the preset's pixel rules."""
from __future__ import annotations

import io
import threading

import numpy as np
from PIL import Image, ImageDraw

from bananaflow.landing.output_presets import QAReport
from bananaflow.landing.verdict import FREE_CHECK_NAMES
from bananaflow.quality.free_checks import DuplicateWatcher, check_not_blank, free_verdict, preset_verdict


def encode(image: Image.Image, fmt: str = "PNG", quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, quality=quality) if fmt == "JPEG" else image.save(out, fmt)
    return out.getvalue()


def product(fill: tuple[int, int, int] = (30, 90, 160), size: int = 512, shift: int = 0, label: bool = True) -> Image.Image:
    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((90 + shift, 60, 420 + shift, 470), radius=40, fill=fill)
    if label:
        draw.rectangle((130 + shift, 220, 380 + shift, 330), fill=(235, 225, 200))
    return image


def test_blank_and_near_uniform_images_fail_with_their_colour() -> None:
    for colour in ((255, 255, 255), (128, 128, 130), (0, 0, 0)):
        verdict = check_not_blank(encode(Image.new("RGB", (400, 300), colour), "JPEG"))
        assert not verdict.passed and verdict.stage == "free" and verdict.checks[0].name == "not_blank"
        assert f"rgb({colour[0]}," in verdict.reasons[0] or "rgb(" in verdict.reasons[0]
    noisy = np.clip(np.random.default_rng(1).normal(240, 2, (300, 300, 3)), 0, 255).astype(np.uint8)
    assert not check_not_blank(encode(Image.fromarray(noisy), "JPEG")).passed  # sensor-like noise is still blank


def test_a_small_product_on_white_is_not_blank() -> None:
    image = Image.new("RGB", (1024, 1024), (255, 255, 255))
    ImageDraw.Draw(image).ellipse((450, 450, 590, 590), fill=(200, 40, 40))  # ~1.5% of the frame
    assert check_not_blank(encode(image)).passed


def test_the_same_picture_for_two_products_fails_even_re_encoded() -> None:
    watcher = DuplicateWatcher()
    assert watcher.check("SKU-1", "main", encode(product())).passed
    again = watcher.check("SKU-2", "main", encode(product().resize((800, 800)), "JPEG", 80))
    assert not again.passed and "'SKU-1'" in again.reasons[0] and again.checks[0].name == "not_duplicate"


def test_colour_variants_and_other_designs_are_not_duplicates() -> None:
    watcher = DuplicateWatcher()
    assert watcher.check("RED", "main", encode(product(fill=(200, 30, 30)))).passed
    assert watcher.check("BLUE", "main", encode(product(fill=(30, 60, 200)))).passed  # same design, other colour
    assert watcher.check("OTHER", "main", encode(product(shift=-80, label=False))).passed


def test_a_regeneration_replaces_its_own_earlier_image() -> None:
    watcher = DuplicateWatcher()
    watcher.check("SKU-1", "main", encode(product()))
    assert watcher.check("SKU-1", "main", encode(product())).passed  # same product, made again
    assert watcher.check("SKU-1", "main", encode(product(fill=(10, 160, 40)))).passed
    assert len(watcher) == 1
    assert watcher.check("SKU-2", "main", encode(product())).passed  # SKU-1's old picture is gone


def test_the_watcher_is_safe_across_threads() -> None:
    watcher = DuplicateWatcher()
    images = [encode(product(fill=(i * 20 % 255, 100, 255 - i * 20 % 255), shift=(i % 5) * 10)) for i in range(12)]
    results: list[bool] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        verdict = watcher.check(f"SKU-{index}", "main", images[index % 6])
        with lock:
            results.append(verdict.passed)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(watcher) == 12 and results.count(False) >= 6  # each of 6 pictures went to two products


def test_the_preset_report_becomes_the_output_preset_check() -> None:
    failed = preset_verdict(QAReport("amazon-main", {"border_white": 0.62, "fill": 0.9}, ["border_white=0.62 < 0.98"]))
    assert not failed.passed and failed.reasons == ("output_preset: amazon-main QA failed: border_white=0.62 < 0.98",)
    passed = preset_verdict(QAReport("amazon-main", {"border_white": 1.0, "fill": 0.9, "format": "JPEG"}))
    assert passed.passed and "border_white=1.0" in passed.checks[0].reason


def test_free_checks_combine_into_one_free_verdict_named_from_the_free_vocabulary() -> None:
    parts = [check_not_blank(encode(product())), DuplicateWatcher().check("A", "main", encode(product())),
             preset_verdict(QAReport("shopify", {}, ["long_side=800 < 2048"]))]
    verdict = free_verdict(c for v in parts for c in v.checks)
    assert [c.name for c in verdict.checks] == list(FREE_CHECK_NAMES)
    assert not verdict.passed and verdict.note == "failed: output_preset"
