"""Reference photos: the real product, fetched and shrunk, sent with the prompt (edit mode).

A photo can live on the shop's CDN (http(s)), in a bucket (``s3://``) or next to the catalog
(a path relative to the catalog file). Whatever it is, it is decoded and re-encoded here:
a 6000 px camera JPEG costs the same input tokens as a 2048 px one but makes the request
body ten times larger, and Gemini refuses inline requests over 20 MB. A photo that cannot be
fetched or decoded fails *its item*, never the run, and is never silently dropped: an
edit-mode prompt without its photo would invent the product. Links are untrusted: what a link
may reach, and the one message for a refused or failed fetch, are in ``safe_fetch``.
"""
from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import posixpath
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from bananaflow.catalog import safe_fetch
from bananaflow.errors import BananaflowError, ConfigurationError
from bananaflow.providers.base import ReferenceImage
from bananaflow.providers.models import get_model

log = logging.getLogger("bananaflow.catalog.references")

#: Inline request budget for reference photos, as base64, below Gemini's 20 MB per request
#: so the prompt and JSON framing always fit.
MAX_INLINE_BASE64_BYTES = 18 * 1024 * 1024
#: A photo larger than this is not downloaded at all.
MAX_DOWNLOAD_BYTES = safe_fetch.MAX_DOWNLOAD_BYTES
#: A photo with more pixels than this is refused before it is decoded (a 99 KB PNG can
#: declare 9000x9000 = 81 MP = 324 MB decoded). 50 MP fits every phone and camera photo.
MAX_PIXELS = 50_000_000
#: Decodes at the same time in one process, whatever the number of items in flight.
MAX_PARALLEL_DECODES = 2
_DECODES = threading.BoundedSemaphore(MAX_PARALLEL_DECODES)
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
    if isinstance(base, str) and base.startswith(("s3://", "gs://")):
        bucket, _, folder = base[5:].partition("/")
        return f"{base[:5]}{bucket}/" + posixpath.normpath(posixpath.join(folder, link)).lstrip("/")
    base_dir = Path(base) if base is not None else None
    path = Path(link).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return os.path.normpath(path)


def shrink(data: bytes, max_side: int, *, source: str = "photo") -> ReferenceImage:
    """Decode (any format Pillow reads), apply EXIF rotation, flatten onto white, scale to
    at most ``max_side`` on the long side, and re-encode as JPEG."""
    with _DECODES:
        image = _decode(data, max_side, source)
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


def _decode(data: bytes, max_side: int, source: str) -> Image.Image:
    """Open, check the declared size against ``MAX_PIXELS`` before decoding anything, let
    JPEG decode at a reduced scale (``draft``), then decode and rotate."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                width, height = opened.size
                if width * height > MAX_PIXELS:
                    raise ReferencePhotoError(
                        f"reference photo {source} has more than {MAX_PIXELS // 1_000_000} megapixels; "
                        "use a smaller photo"
                    )
                if opened.format == "JPEG":
                    opened.draft("RGB", (max_side, max_side))
                opened.load()
                return ImageOps.exif_transpose(opened)
    except ReferencePhotoError:
        raise
    except Exception as exc:  # Pillow raises many types on bad input
        raise ReferencePhotoError(
            f"reference photo {source} is not a readable image ({type(exc).__name__}: {str(exc)[:100]})"
        ) from None


class ReferenceFetcher:
    """Fetches and shrinks reference photos, remembering recent ones: a product's photo is
    sent with each of its variants, and a group's first image with every sibling."""

    def __init__(
        self,
        *,
        timeout_s: float | None = None,
        s3_client: Any = None,
        policy: safe_fetch.FetchPolicy | None = None,
        transport_factory: Any = None,
    ) -> None:
        policy = policy or safe_fetch.FetchPolicy.from_env()
        if timeout_s is not None:  # one total deadline per download, redirects included
            policy = replace(policy, deadline_s=timeout_s)
        self.policy = policy
        self.transport_factory = transport_factory
        self._s3 = s3_client
        self._gcs: Any = None
        self._cache: OrderedDict[tuple[str, int], ReferenceImage] = OrderedDict()
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}

    async def for_item(self, item: Any, store: Any) -> tuple[ReferenceImage, ...]:
        """The item's photos (its own first, then its group's first image), within the
        model's limit on reference images and the inline request budget."""
        limit = get_model(item.model).max_reference_images
        root = getattr(item, "reference_root", "")
        bucket = getattr(store, "bucket", "") or ""
        buckets = (f"{getattr(store, 'scheme', 's3')}://{bucket}" if bucket else "", _bucket_of(root))
        photos = [await self.fetch(link, item.max_reference_side, root=root, buckets=buckets) for link in item.reference_links]
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

    async def fetch(
        self, link: str, max_side: int, *, root: str = "", buckets: tuple[str, ...] = ()
    ) -> ReferenceImage:
        key = (link, max_side)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
            if link.startswith(("s3://", "gs://")):
                data = await self._download_s3(link, buckets)
            else:
                data = await self._download(link, "" if root.startswith(("s3://", "gs://")) else root)
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
        cache_key = (f"{getattr(store, 'scheme', 's3')}://{store.bucket}/{key}", max_side)
        if cache_key in self._cache:
            return self._cache[cache_key]
        data = await asyncio.to_thread(store.get_bytes, key)
        image = await asyncio.to_thread(shrink, data, max_side, source=key)
        self._cache[cache_key] = image
        return image

    async def _download(self, link: str, root: str = "") -> bytes:
        """The photo's bytes, through ``safe_fetch``'s checks; every refusal and failure is
        the same ``ReferencePhotoError`` text (see ``safe_fetch.refusal_text``)."""
        policy = self.policy
        try:
            if link.startswith(("http://", "https://")):
                return await safe_fetch.fetch_http(link, policy, transport=self._transport())
            if "://" in link:  # file://, ftp://, gopher://...: never
                raise safe_fetch.RefusedFetch("scheme")
            return await asyncio.to_thread(safe_fetch.read_local, link, [root] if root else [], policy)
        except safe_fetch.RefusedFetch:
            raise ReferencePhotoError(safe_fetch.refusal_text(_display(link))) from None

    def _transport(self) -> safe_fetch.PinnedTransport | None:
        return self.transport_factory(self.policy) if self.transport_factory else None

    async def _download_s3(self, link: str, buckets: tuple[str, ...]) -> bytes:
        policy = self.policy
        try:
            if not safe_fetch.bucket_allowed(link, buckets, policy):
                raise safe_fetch.RefusedFetch("bucket")
            return await asyncio.wait_for(asyncio.to_thread(self._read_s3, link), policy.deadline_s)
        except (safe_fetch.RefusedFetch, TimeoutError):
            raise ReferencePhotoError(safe_fetch.refusal_text(_display(link))) from None

    def _read_s3(self, uri: str) -> bytes:
        """Any S3 or Cloud Storage failure fails the item (not retried), like a 404 on a CDN."""
        if uri.startswith("gs://"):
            return self._read_gs(uri)
        from bananaflow.landing.storage import S3_ERRORS, make_s3_client  # late: boto3 only for s3:// photos

        if self._s3 is None:
            self._s3 = make_s3_client()
        try:
            return safe_fetch.read_s3_capped(self._s3, uri, self.policy)
        except S3_ERRORS:
            raise safe_fetch.RefusedFetch("s3 error") from None

    def _read_gs(self, uri: str) -> bytes:
        try:
            if self._gcs is None:
                self._gcs = _gcs_client()
            return safe_fetch.read_gs_capped(self._gcs, uri, self.policy)
        except safe_fetch.RefusedFetch:
            raise
        except Exception:  # any Cloud Storage failure reads like any other refusal
            raise safe_fetch.RefusedFetch("gcs error") from None


def _gcs_client() -> Any:
    from bananaflow.landing.gcs import make_gcs_client  # late: google-cloud-storage only for gs:// photos

    return make_gcs_client()


def _bucket_of(root: str) -> str:
    """``s3://bucket`` / ``gs://bucket`` of a catalog read from a bucket, else ``""``."""
    return root[:5] + root[5:].partition("/")[0] if root.startswith(("s3://", "gs://")) else ""


def _display(link: str) -> str:
    """The link without a query string, which may carry a signature."""
    return link.split("?", 1)[0]
