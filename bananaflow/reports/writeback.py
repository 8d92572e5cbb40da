"""Writing the new image URLs back where the shop will import them.

* Shopify: the shop's own product CSV, every original row untouched, plus one new image row
  per generated image right after its handle's rows (``Handle`` + ``Image Src`` +
  ``Image Position`` + ``Image Alt Text``), which is how Shopify's import adds images.
* Merchant Center: a supplemental feed (TSV: ``id``, ``image_link``,
  ``additional_image_link``) that overrides just those attributes of the primary feed.

URLs are a public base URL + key when the bucket sits behind a CDN, otherwise presigned
SigV4 URLs valid for ``presign_expiry_s`` (at most 7 days, SigV4's limit), so a re-import
must happen within that window.
"""
from __future__ import annotations

import csv
import io
import json
import urllib.parse
from collections.abc import Iterable, Sequence

from bananaflow.catalog.loader import decode_text, read_catalog_bytes
from bananaflow.errors import CatalogError
from bananaflow.landing import csv_safe
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.storage import ImageStore
from bananaflow.planning.jobspec import WritebackSpec

PUBLISHABLE = frozenset({"succeeded", "skipped_exists", "skipped_unchanged"})
MAX_ADDITIONAL_IMAGES = 10


def listing_key(row: ManifestRow) -> str:
    """The marketplace-ready derivative when the variant has an output preset, else the
    original."""
    derivatives = json.loads(row.derivatives) if row.derivatives else {}
    chosen = [key for name, key in derivatives.items() if name != "thumb"]
    return chosen[0] if chosen else row.key


def image_url(store: ImageStore, key: str, spec: WritebackSpec) -> str:
    if spec.public_base_url:
        return spec.public_base_url.rstrip("/") + "/" + urllib.parse.quote(key)
    return store.presigned_url(key, expires_s=spec.presign_expiry_s)


def _by_sku(rows: Iterable[ManifestRow], variant_order: Sequence[str]) -> dict[str, list[ManifestRow]]:
    rank = {name: i for i, name in enumerate(variant_order)}
    grouped: dict[str, list[ManifestRow]] = {}
    for row in rows:
        if row.status in PUBLISHABLE and row.key:
            grouped.setdefault(row.sku, []).append(row)
    for items in grouped.values():
        items.sort(key=lambda r: rank.get(r.variant, len(rank)))
    return grouped


def shopify_csv(
    catalog: str,
    rows: Iterable[ManifestRow],
    store: ImageStore,
    spec: WritebackSpec,
    variant_order: Sequence[str],
    *,
    encoding: str | None = None,
) -> bytes:
    """The catalog's rows with new image rows per handle, as UTF-8 CSV for Shopify's import."""
    data, name = read_catalog_bytes(catalog)
    text = decode_text(data, name, encoding)
    records = list(csv.reader(io.StringIO(text, newline="")))
    if not records:
        raise CatalogError(f"{catalog} is empty; cannot write the Shopify CSV back")
    header = [h.strip().lstrip("\ufeff") for h in records[0]]
    handle_col = next((header.index(c) for c in ("Handle", "URL handle") if c in header), None)
    if handle_col is None:
        raise CatalogError(f"{catalog} has no Handle column; Shopify write-back needs the Shopify export")
    extra = [c for c in ("Image Src", "Image Position", "Image Alt Text") if c not in header]
    header += extra
    col = {name: header.index(name) for name in ("Image Src", "Image Position", "Image Alt Text")}
    title_col = header.index("Title") if "Title" in header else None
    grouped = _by_sku(rows, variant_order)

    body = [r + [""] * (len(header) - len(r)) for r in records[1:] if any(c.strip() for c in r)]
    last_index: dict[str, int] = {}
    positions: dict[str, int] = {}
    titles: dict[str, str] = {}
    for i, record in enumerate(body):
        handle = record[handle_col].strip()
        last_index[handle] = i
        position = record[col["Image Position"]].strip()
        if position.isdigit():
            positions[handle] = max(positions.get(handle, 0), int(position))
        elif record[col["Image Src"]].strip():
            positions[handle] = positions.get(handle, 0) + 1
        if title_col is not None and record[title_col].strip() and handle not in titles:
            titles[handle] = record[title_col].strip()
    # a run keyed by variant SKU (--map sku="Variant SKU") still lands on the right handle
    handle_of = {h: h for h in last_index}
    sku_cols = [header.index(c) for c in ("Variant SKU", "SKU") if c in header]
    for record in body:
        for c in sku_cols:
            if record[c].strip():
                handle_of.setdefault(record[c].strip(), record[handle_col].strip())
    by_handle: dict[str, list[ManifestRow]] = {}
    for sku, made in grouped.items():
        if sku in handle_of:
            by_handle.setdefault(handle_of[sku], []).extend(made)
    inserts: dict[int, list[list[str]]] = {}
    for handle, made in by_handle.items():
        for row in made:
            positions[handle] = positions.get(handle, 0) + 1
            new = [""] * len(header)
            new[handle_col] = handle
            new[col["Image Src"]] = image_url(store, listing_key(row), spec)
            new[col["Image Position"]] = str(positions[handle])
            new[col["Image Alt Text"]] = f"{titles.get(handle, handle)} – {row.variant}"
            inserts.setdefault(last_index[handle], []).append(new)
    out = io.StringIO(newline="")
    writer = csv_safe.writer(out, lineterminator="\n")  # spreadsheet-safe cells
    writer.writerow(header)
    for i, record in enumerate(body):
        writer.writerow(record)
        writer.writerows(inserts.get(i, []))
    return out.getvalue().encode("utf-8")


def merchant_supplemental(
    rows: Iterable[ManifestRow], store: ImageStore, spec: WritebackSpec, variant_order: Sequence[str]
) -> bytes:
    """A Merchant Center supplemental feed: the main variant's image as ``image_link``, the
    other variants as ``additional_image_link``. Products whose main image was not made get
    no row, so the primary feed's image stays."""
    main = spec.main_variant or (variant_order[0] if variant_order else "main")
    out = io.StringIO(newline="")
    writer = csv_safe.writer(out, delimiter="\t", lineterminator="\n")  # spreadsheet-safe cells
    writer.writerow(["id", "image_link", "additional_image_link"])
    for sku, made in _by_sku(rows, variant_order).items():
        primary = next((r for r in made if r.variant == main), None)
        if primary is None:
            continue
        others = [image_url(store, listing_key(r), spec) for r in made if r is not primary][:MAX_ADDITIONAL_IMAGES]
        writer.writerow([sku, image_url(store, listing_key(primary), spec), ",".join(others)])
    return out.getvalue().encode("utf-8")
