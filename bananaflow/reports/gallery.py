"""A contact sheet of a run: small JPEG thumbnails behind presigned SigV4 URLs.

A person eyeballs a batch far faster than they read a manifest, but a gallery must not
re-download a 10,000-image run or link 4K originals into a web page. So it shows a bounded
sample (every failure-free image up to ``limit``, spread evenly over the run), makes a
256-pixel JPEG of each once and stores it beside the run's manifest
(``<run prefix>/thumbs/``), and links it with a presigned URL that expires: the bucket
stays private and no credential appears in the page (a SigV4 URL carries a signature and
the access key *id*, never the secret).
"""
from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from PIL import Image

from bananaflow.landing.keys import join_key
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.storage import ImageStore
from bananaflow.reports.markdown_safe import text

THUMB_PIXELS = 256
#: How long the gallery's links work; the artifact outlives them, the thumbnails stay.
LINK_EXPIRES_S = 7 * 24 * 3600


@dataclass(frozen=True)
class GalleryEntry:
    sku: str
    variant: str
    status: str
    thumb_url: str
    image_url: str


def make_thumbnail(data: bytes, size: int = THUMB_PIXELS) -> bytes:
    """A JPEG no larger than ``size`` pixels on its long side (RGBA flattened on white)."""
    with Image.open(io.BytesIO(data)) as opened:
        opened.thumbnail((size, size))
        img: Image.Image = opened
        if img.mode not in ("RGB", "L"):
            background = Image.new("RGB", img.size, "white")
            rgba = img.convert("RGBA")
            background.paste(rgba, mask=rgba.getchannel("A"))
            img = background
        out = io.BytesIO()
        img.save(out, "JPEG", quality=80, optimize=True)
        return out.getvalue()


def _has_image(row: ManifestRow) -> bool:
    return bool(row.key) and row.status in ("succeeded", "skipped_exists")


def sample_rows(rows: Iterable[ManifestRow], limit: int) -> list[ManifestRow]:
    """Up to ``limit`` rows that have an image, spread evenly over the run. ``rows`` is read
    twice (a list, or a run's ``RowLog``), so only the sample is ever held."""
    total = sum(1 for row in rows if _has_image(row))
    if total <= limit:
        return [row for row in rows if _has_image(row)]
    step = total / limit
    wanted = {int(i * step) for i in range(limit)}
    return [row for i, row in enumerate(r for r in rows if _has_image(r)) if i in wanted]


def build_gallery(
    rows: Iterable[ManifestRow], store: ImageStore, run_prefix: str, *, limit: int = 48
) -> list[GalleryEntry]:
    """Make and upload thumbnails for a sample of ``rows``; return their presigned links."""
    entries = []
    for row in sample_rows(rows, limit):
        thumb_key = join_key(run_prefix, "thumbs", f"{row.row_number:07d}-{row.variant}.jpg")
        if not store.exists(thumb_key):
            store.put_bytes(thumb_key, make_thumbnail(store.get_bytes(row.key)), "image/jpeg")
        entries.append(
            GalleryEntry(
                sku=row.sku,
                variant=row.variant,
                status=row.status,
                thumb_url=store.presigned_url(thumb_key, LINK_EXPIRES_S),
                image_url=store.presigned_url(row.key, LINK_EXPIRES_S),
            )
        )
    return entries


def gallery_markdown(entries: Sequence[GalleryEntry], *, total_images: int, columns: int = 4) -> str:
    """A markdown grid of thumbnails, each with a link to its full-size image (Prefect's
    markdown renderer drops an image nested inside a link, so they sit side by side). The
    SKU is plain escaped text beside them, never alt or link text: Prefect's UI shows a
    link's or an image's text as its raw source, backslashes and entities included."""
    if not entries:
        return "## Gallery\n\nNo images in this run."
    lines = [
        "## Gallery",
        "",
        f"{len(entries)} of {total_images} images (links expire in {LINK_EXPIRES_S // 86400} days).",
        "",
        "| " + " | ".join([" "] * columns) + " |",
        "|" + "---|" * columns,
    ]
    for start in range(0, len(entries), columns):
        cells = [
            f"![thumbnail]({_destination(e.thumb_url)}) {text(e.sku, limit=80)} · {text(e.variant, limit=80)} "
            f"[full size]({_destination(e.image_url)})"
            for e in entries[start : start + columns]
        ]
        cells += [" "] * (columns - len(cells))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _destination(url: str) -> str:
    """A presigned URL as one Markdown link destination: characters that would end it or
    start other Markdown (a key is made from a SKU) percent-encoded; the signature covers
    the decoded path, so the link still opens."""
    return "".join(_ENCODE.get(ch, ch) for ch in url)


_ENCODE = {ch: f"%{ord(ch):02X}" for ch in " ()<>[]|`\\\"'\n\r\t"}
