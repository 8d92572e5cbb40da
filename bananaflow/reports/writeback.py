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
from collections.abc import Callable, Iterable, Sequence

from bananaflow.catalog import decode_catalog, read_catalog_bytes
from bananaflow.catalog.color_variants import color_key_part
from bananaflow.catalog.shopify import option_kind
from bananaflow.errors import CatalogError
from bananaflow.landing import csv_safe
from bananaflow.landing.keys import stem_of
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.storage import ImageStore
from bananaflow.planning.jobspec import WritebackSpec
from bananaflow.planning.work import COLOR_SEPARATOR

PUBLISHABLE = frozenset({"succeeded", "skipped_exists", "skipped_unchanged"})
MAX_ADDITIONAL_IMAGES = 10


def listing_key(row: ManifestRow) -> str:
    """The marketplace-ready derivative when the variant has an output preset, else the
    original."""
    try:
        derivatives = json.loads(row.derivatives) if row.derivatives else {}
    except ValueError:
        derivatives = {}
    beside = stem_of(row.key) + "--"  # a derivative sits beside its original, never elsewhere
    chosen = [key for name, key in (derivatives.items() if isinstance(derivatives, dict) else ())
              if name != "thumb" and isinstance(key, str) and key.startswith(beside) and "/" not in key[len(beside):]]
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
    """The catalog's rows with new image rows per handle, as UTF-8 CSV for Shopify's import;
    per-colour images (variants ``main.black``) go into the ``Variant Image`` of the rows
    of that colour instead, which Shopify's import also adds to the product's images."""
    data, name = read_catalog_bytes(catalog)
    text = decode_catalog(data, name, encoding)
    records = list(csv.reader(io.StringIO(text, newline="")))
    if not records:
        raise CatalogError(f"{catalog} is empty; cannot write the Shopify CSV back")
    header = [h.strip().lstrip("\ufeff") for h in records[0]]
    handle_col = next((header.index(c) for c in ("Handle", "URL handle") if c in header), None)
    if handle_col is None:
        raise CatalogError(f"{catalog} has no Handle column; Shopify write-back needs the Shopify export")
    # the 2024 column set names the same columns differently; new rows use the file's own names
    names = ("Product image URL", "Image position", "Image alt text") if "URL handle" in header else (
        "Image Src", "Image Position", "Image Alt Text")
    header += [c for c in names if c not in header]
    col = {legacy: header.index(own) for legacy, own in zip(("Image Src", "Image Position", "Image Alt Text"), names)}
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
    header = _set_variant_images(header, body, handle_col, by_handle, variant_order, lambda r: image_url(
        store, listing_key(r), spec))
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


def _color_of(variant: str, variant_order: Sequence[str]) -> str:
    """The colour slug of a per-colour variant (``main.black`` → ``black``), else ""."""
    base, sep, color = variant.partition(COLOR_SEPARATOR)
    return color if sep and base in variant_order and color else ""


def _set_variant_images(
    header: list[str], body: list[list[str]], handle_col: int, by_handle: dict[str, list[ManifestRow]],
    variant_order: Sequence[str], url_of: Callable[[ManifestRow], str],
) -> list[str]:
    """Fill ``Variant Image`` (``Variant image URL`` in the 2024 columns) of every row whose
    colour option value is the colour a per-colour image was made for; those images are
    taken out of ``by_handle`` (they need no image row of their own). Returns the header."""
    colored = {h: {_color_of(r.variant, variant_order): r for r in made if _color_of(r.variant, variant_order)}
               for h, made in by_handle.items()}
    if not any(colored.values()):
        return header
    for handle in colored:
        by_handle[handle] = [r for r in by_handle[handle] if not _color_of(r.variant, variant_order)]
    column = next((c for c in ("Variant Image", "Variant image URL") if c in header), None)
    if column is None:
        header = [*header, "Variant Image"]
        for record in body:
            record.append("")
        column = "Variant Image"
    target = header.index(column)
    option_cols = {i: [header.index(n) for n in (f"Option{i} Name", f"Option{i} name") if n in header] for i in (1, 2, 3)}
    value_cols = {i: [header.index(n) for n in (f"Option{i} Value", f"Option{i} value") if n in header] for i in (1, 2, 3)}
    color_index: dict[str, int] = {}
    for record in body:
        handle = record[handle_col].strip()
        for i, cols in option_cols.items():
            if handle not in color_index and any(option_kind(record[c]) == "color" for c in cols):
                color_index[handle] = i
        made = colored.get(handle)
        if not made or handle not in color_index:
            continue
        value = next((record[c].strip() for c in value_cols[color_index[handle]] if record[c].strip()), "")
        row = made.get(color_key_part(value)) if value else None
        if row is not None:
            record[target] = url_of(row)
    return header


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
