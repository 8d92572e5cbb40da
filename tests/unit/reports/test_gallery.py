from __future__ import annotations

import io

from PIL import Image

from bananaflow.landing.manifest import ManifestRow
from bananaflow.reports.gallery import GalleryEntry, gallery_markdown, make_thumbnail, sample_rows


def _png(size: tuple[int, int], mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 10, 10, 128) if mode == "RGBA" else (200, 10, 10)).save(out, "PNG")
    return out.getvalue()


def test_thumbnail_is_a_small_jpeg_keeping_the_aspect_ratio():
    thumb = Image.open(io.BytesIO(make_thumbnail(_png((2048, 1152)))))
    assert thumb.format == "JPEG" and thumb.size == (256, 144)


def test_transparent_images_are_flattened_on_white():
    thumb = Image.open(io.BytesIO(make_thumbnail(_png((300, 300)))))
    assert thumb.mode == "RGB"
    r, g, b = thumb.getpixel((10, 10))
    assert r > 200 and g > 100  # half-transparent red on white is pink, not dark red


def _row(i: int, status: str = "succeeded") -> ManifestRow:
    key = f"p/SKU-{i}/main-x.png" if status in ("succeeded", "skipped_exists") else ""
    return ManifestRow(run_id="r", row_number=i, sku=f"SKU-{i}", variant="main", status=status, key=key)


def test_sample_spreads_over_the_run_and_skips_items_without_an_image():
    rows = [_row(i, "failed" if i % 10 == 0 else "succeeded") for i in range(1000)]
    sample = sample_rows(rows, 48)
    assert len(sample) == 48 and all(r.key for r in sample)
    assert sample[0].row_number < 20 and sample[-1].row_number > 950


def test_markdown_puts_images_and_links_side_by_side():
    entries = [GalleryEntry(f"SKU|{i}", "main", "succeeded", f"https://t/{i}.jpg", f"https://i/{i}.png") for i in range(5)]
    md = gallery_markdown(entries, total_images=50, columns=4)
    assert "5 of 50 images" in md
    assert md.count("![") == 5 and "[![" not in md  # Prefect's renderer drops images nested in links
    assert "SKU\\|0" in md  # a pipe in a SKU would break the table: escaped
    assert gallery_markdown([], total_images=0).endswith("No images in this run.")
