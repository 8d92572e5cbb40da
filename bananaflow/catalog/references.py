"""Reference photos: the real product, fetched and shrunk, sent with the prompt (edit mode).

A photo can live on the shop's CDN (http(s)), in a bucket (``s3://``) or next to the catalog
(a path relative to the catalog file). Whatever it is, it is decoded and re-encoded here:
a 6000 px camera JPEG costs the same input tokens as a 2048 px one but makes the request
body ten times larger, and Gemini refuses inline requests over 20 MB. A photo that cannot be
fetched or decoded fails *its item* with the reason (``HTTP 404``, ``not an image``), never
the run, and is never silently dropped: an edit-mode prompt without its photo would invent
the product.
"""
from __future__ import annotations

import asyncio
import base64
import io
import ipaddress
import logging
import os
import posixpath
import warnings
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageOps

from bananaflow.errors import BananaflowError, ConfigurationError, StorageError
from bananaflow.providers.base import ReferenceImage
from bananaflow.providers.models import get_model

log = logging.getLogger("bananaflow.catalog.references")

#: Inline request budget for reference photos, as base64, below Gemini's 20 MB per request
#: so the prompt and JSON framing always fit.
MAX_INLINE_BASE64_BYTES = 18 * 1024 * 1024
#: A photo larger than this is not downloaded at all.
MAX_DOWNLOAD_BYTES = 40 * 1024 * 1024
_CACHE_ENTRIES = 64


class ReferencePhotoError(BananaflowError):
    """A reference photo could not be fetched or decoded; the item fails with this reason.
    Not retried: a 404 or a corrupt file does not fix itself within a run."""


def require_edit_mode(items: Iterable[Any], provider_kind: str) -> None:
    """Refuse, before any call, a run that needs reference photos on a provider that cannot
    take them (the OpenAI-compatible images route)."""
    if provider_kind in ("gemini", "vertex"):  # both take Gemini's generateContent body
        return
    needing = next((i for i in items if i.reference_links or i.group_reference_stem), None)
    if needing is not None:
        raise ConfigurationError(
            f"variant '{needing.variant}' sends reference photos, which the {provider_kind} provider cannot take; "
            "use the gemini provider (a Gemini-format relay works too) or set reference: false"
        )


def resolve_link(link: str, base: Path | str | None) -> str:
    """URLs stay as they are; a relative path is resolved against the catalog's folder (a
    local folder, or an ``s3://bucket/prefix/`` for a catalog read from a bucket), so a run
    started from anywhere finds the same photos."""
    if "://" in link:
        return link
    if isinstance(base, str) and base.startswith("s3://"):
        bucket, _, folder = base[5:].partition("/")
        return f"s3://{bucket}/" + posixpath.normpath(posixpath.join(folder, link)).lstrip("/")
    base_dir = Path(base) if base is not None else None
    path = Path(link).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return os.path.normpath(path)


def shrink(data: bytes, max_side: int, *, source: str = "photo") -> ReferenceImage:
    """Decode (any format Pillow reads), apply EXIF rotation, flatten onto white, scale to
    at most ``max_side`` on the long side, and re-encode as JPEG."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                opened.load()
                image = ImageOps.exif_transpose(opened)
    except Exception as exc:  # Pillow raises many types on bad input
        raise ReferencePhotoError(
            f"reference photo {source} is not a readable image ({type(exc).__name__}: {str(exc)[:100]})"
        ) from None
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        image = flat
    else:
        image = image.convert("RGB")
    if max(image.size) > max_side:
        image = ImageOps.contain(image, (max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return ReferenceImage(out.getvalue(), "image/jpeg")


class ReferenceFetcher:
    """Fetches and shrinks reference photos, remembering recent ones: a product's photo is
    sent with each of its variants, and a group's first image with every sibling."""

    def __init__(self, *, timeout_s: float = 30.0, s3_client: Any = None) -> None:
        self.timeout_s = timeout_s
        self._s3 = s3_client
        self._cache: OrderedDict[tuple[str, int], ReferenceImage] = OrderedDict()
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}

    async def for_item(self, item: Any, store: Any) -> tuple[ReferenceImage, ...]:
        """The item's photos (its own first, then its group's first image), within the
        model's limit on reference images and the inline request budget."""
        limit = get_model(item.model).max_reference_images
        photos = [await self.fetch(link, item.max_reference_side) for link in item.reference_links]
        if item.group_reference_stem:
            photos.insert(min(1, len(photos)), await self._group_image(item.group_reference_stem, store, item.max_reference_side))
        if len(photos) > limit:
            log.info("row %s (sku %s): sending %d of %d reference photos (%s takes at most %d)",
                     item.row_number, item.sku, limit, len(photos), item.model, limit)
            photos = photos[:limit]
        kept, total = [], 0
        for photo in photos:
            size = len(base64.b64encode(photo.data))
            if total + size > MAX_INLINE_BASE64_BYTES:
                break
            kept.append(photo)
            total += size
        if photos and not kept:
            raise ReferencePhotoError("the reference photo is too large for an inline request even after scaling")
        return tuple(kept)

    async def fetch(self, link: str, max_side: int) -> ReferenceImage:
        key = (link, max_side)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
            data = await self._download(link)
            image = await asyncio.to_thread(shrink, data, max_side, source=_display(link))
            self._cache[key] = image
            while len(self._cache) > _CACHE_ENTRIES:
                self._cache.popitem(last=False)
            return image

    async def _group_image(self, stem: str, store: Any, max_side: int) -> ReferenceImage:
        key = await asyncio.to_thread(store.find_existing, stem)
        if key is None:
            raise ReferencePhotoError(
                "the first product of this item_group_id has no image (it failed or was blocked), "
                "so there is no group reference to keep its look"
            )
        cache_key = (f"s3://{store.bucket}/{key}", max_side)
        if cache_key in self._cache:
            return self._cache[cache_key]
        data = await asyncio.to_thread(store.get_bytes, key)
        image = await asyncio.to_thread(shrink, data, max_side, source=key)
        self._cache[cache_key] = image
        return image

    async def _download(self, link: str) -> bytes:
        where = _display(link)
        if link.startswith(("http://", "https://")):
            async def check_each_hop(request: httpx.Request) -> None:  # redirects included
                _refuse_metadata_host(str(request.url))

            try:
                async with httpx.AsyncClient(
                    timeout=self.timeout_s, follow_redirects=True, event_hooks={"request": [check_each_hop]}
                ) as client:
                    async with client.stream("GET", link) as response:
                        if response.status_code != 200:
                            raise ReferencePhotoError(f"reference photo {where} answered HTTP {response.status_code}")
                        chunks, size = [], 0
                        async for chunk in response.aiter_bytes():
                            size += len(chunk)
                            if size > MAX_DOWNLOAD_BYTES:
                                limit_mb = MAX_DOWNLOAD_BYTES // 2**20
                                raise ReferencePhotoError(f"reference photo {where} is larger than {limit_mb} MB")
                            chunks.append(chunk)
                        return b"".join(chunks)
            except httpx.HTTPError as exc:
                raise ReferencePhotoError(f"reference photo {where} is unreachable ({type(exc).__name__})") from None
        if link.startswith("s3://"):
            return await asyncio.to_thread(self._read_s3, link)
        path = Path(link)
        try:
            if path.stat().st_size > MAX_DOWNLOAD_BYTES:
                raise ReferencePhotoError(f"reference photo {where} is larger than {MAX_DOWNLOAD_BYTES // 2**20} MB")
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise ReferencePhotoError(f"reference photo {where} does not exist") from None
        except OSError as exc:
            raise ReferencePhotoError(f"reference photo {where} cannot be read ({exc.strerror or exc})") from None

    def _read_s3(self, uri: str) -> bytes:
        """Any S3 failure fails the item (not retried), like a 404 on a CDN."""
        from bananaflow.landing.storage import make_s3_client, read_s3_uri  # late: boto3 only for s3:// photos

        if self._s3 is None:
            self._s3 = make_s3_client()
        try:
            return read_s3_uri(uri, client=self._s3)
        except StorageError as exc:
            raise ReferencePhotoError(f"reference photo {uri} cannot be read: {exc.message}") from None


def _refuse_metadata_host(link: str) -> None:
    """Catalog values are untrusted: a photo link must not make the pipeline fetch a cloud
    metadata endpoint (link-local 169.254.0.0/16, fe80::/10) and send it to the model."""
    host = (httpx.URL(link).host or "").strip("[]").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        blocked = host in ("metadata.google.internal", "metadata")
    else:
        blocked = address.is_link_local
    if blocked:
        raise ReferencePhotoError(f"reference photo {_display(link)} points at a cloud metadata address; refused")


def _display(link: str) -> str:
    """The link without a query string, which may carry a signature."""
    return link.split("?", 1)[0]
