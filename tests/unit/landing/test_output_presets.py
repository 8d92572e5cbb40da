"""Output presets and QA on real image files (tests/fixtures/images)."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from bananaflow.errors import ConfigurationError
from bananaflow.landing.output_presets import PRESETS, finish, get_preset, with_overrides
from tests.paths import FIXTURES

IMAGES = FIXTURES / "images"


def data(name: str) -> bytes:
    return (IMAGES / name).read_bytes()


def opened(blob: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(blob))
    image.load()
    return image


def test_amazon_main_snaps_near_white_to_exact_white_and_passes() -> None:
    done = finish(data("near_white_1200.png"), "amazon-main")
    assert done.report.passed, done.report.problems
    m = done.report.measurements
    assert m["border_white"] == 1.0 and 0.89 <= m["fill"] <= 0.91 and m["long_side"] == 1200
    main, thumb = done.derivatives
    assert (main.name, main.mime_type, main.extension) == ("amazon-main", "image/jpeg", "jpg")
    image = opened(main.data)
    assert image.format == "JPEG" and image.mode == "RGB" and image.size == (1200, 1200)
    assert image.info.get("icc_profile"), "sRGB profile embedded"
    assert image.getpixel((3, 3)) == (255, 255, 255)  # JPEG keeps flat white exact
    assert (thumb.name, max(thumb.width, thumb.height)) == ("thumb", 256)


def test_amazon_main_fails_with_measured_numbers() -> None:
    small = finish(data("small_product_1200.png"), "amazon-main").report
    assert not small.passed
    assert small.problems == [f"fill={small.measurements['fill']} < 0.85 (product too small in the frame)"]
    assert 0.49 <= small.measurements["fill"] <= 0.51
    grey = finish(data("grey_background_1200.jpg"), "amazon-main").report
    assert any(p.startswith("border_white=0.0 < 0.98") for p in grey.problems)
    assert json.loads(grey.to_json())["passed"] is False
    tiny = finish(data("portrait_640x800.png"), "amazon-main").report
    assert tiny.problems == ["long_side=800 < 1000 px"]


def test_transparency_is_flattened_onto_white() -> None:
    done = finish(data("transparent_1000.png"), "amazon-main")
    assert done.report.passed and done.report.measurements["border_white"] == 1.0
    assert opened(done.derivatives[0].data).mode == "RGB"


@pytest.mark.parametrize(("preset", "side"), [("shopify", 2048), ("taobao-main", 800), ("jd-main", 800)])
def test_square_presets_pad_a_portrait_image_on_white(preset: str, side: int) -> None:
    done = finish(data("portrait_640x800.png"), preset)
    assert done.report.passed, done.report.problems
    image = opened(done.derivatives[0].data)
    assert image.size == (side, side) and image.format == "JPEG"
    pixels = np.asarray(image)
    assert (pixels[:, :5] >= 250).all(), "padding on the left is white"


def test_jd_and_taobao_require_a_white_background() -> None:
    for preset in ("taobao-main", "jd-main"):
        report = finish(data("grey_background_1200.jpg"), preset).report
        assert not report.passed and report.problems[0].startswith("border_white=")


def test_google_merchant_minimum_size_and_byte_limits() -> None:
    assert finish(data("portrait_640x800.png"), "google-merchant").report.passed
    strict = with_overrides("google-merchant", min_short_side=700, max_bytes=1000)
    report = finish(data("portrait_640x800.png"), strict).report
    assert report.problems[0] == "short_side=640 < 700 px"
    assert report.problems[1].startswith("bytes=") and report.problems[1].endswith("> 1000")


def test_every_shipped_preset_is_known_and_unknown_names_fail() -> None:
    assert set(PRESETS) == {"amazon-main", "shopify", "google-merchant", "taobao-main", "jd-main"}
    with pytest.raises(ConfigurationError, match="unknown output preset 'ebay'; known: amazon-main"):
        get_preset("ebay")
