"""Deterministic S3 object keys for generated images.

A key is a pure function of (prefix, SKU, variant, request digest, extension), so a re-run
finds the image a previous run already paid for (``ImageStore.find_existing``) instead of
generating it again. SKUs come from merchants and may hold anything: slashes, ``..``,
spaces, emoji, 1,000 characters. ``sanitize_sku`` turns each into one safe key segment and
appends a short hash whenever it had to change something, so two SKUs that differ only in
the characters it removed still get different keys.
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

MAX_SKU_SEGMENT = 80
_HASH_LEN = 8
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DOTS = re.compile(r"\.{2,}")
_DASHES = re.compile(r"-{2,}")
_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_HEX = re.compile(r"^[0-9a-f]+$")
_EXT = re.compile(r"^[a-z0-9]{1,10}$")
_MIME_EXT = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/pjpeg": "jpg",
    "image/webp": "webp",
}


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LEN]


def sanitize_sku(sku: str) -> str:
    """One safe, non-empty key segment for ``sku``; unchanged SKUs map to themselves.

    NFKC first, so a full-width ``ＡＢＣ`` and ``ABC`` read the same to a human; but any
    change (or truncation to 80 chars) adds ``-`` + 8 hex of sha256(original), because
    merchants do have SKUs that differ only in punctuation or case of a removed character.
    """
    if not isinstance(sku, str):
        raise TypeError(f"sku must be str, not {type(sku).__name__}")
    cleaned = unicodedata.normalize("NFKC", sku)
    cleaned = _UNSAFE.sub("-", cleaned)  # slashes, spaces, control chars, non-ASCII
    cleaned = _DOTS.sub(".", cleaned)  # no ".." anywhere
    cleaned = _DASHES.sub("-", cleaned)
    cleaned = cleaned.strip(".-")  # no "." / hidden segments, no dangling separators
    if cleaned and cleaned == sku and len(cleaned) <= MAX_SKU_SEGMENT:
        return cleaned
    room = MAX_SKU_SEGMENT - _HASH_LEN - 1
    base = cleaned[:room].rstrip(".-") or "sku"
    return f"{base}-{_short_hash(sku)}"


def _canonical(value: Any) -> Any:
    """JSON-ready form whose serialisation does not depend on dict order or container type."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, (bytes, bytearray, memoryview)):
        # Reference images: hash the content, not a repr that changes with the object.
        return {"sha256": hashlib.sha256(bytes(value)).hexdigest()}
    if isinstance(value, PurePath):
        return value.as_posix()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"params_hash cannot hash a {type(value).__name__}; pass plain JSON values")


def params_hash(prompt: str, model: str, params: Mapping[str, Any]) -> str:
    """12 hex chars identifying one generation request.

    Anything that changes the image (prompt text, model, size, ratio, reference images)
    must go in, so a changed request gets a new key and is never mistaken for done.
    """
    payload = {"prompt": prompt, "model": model, "params": _canonical(dict(params))}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def normalize_prefix(prefix: str) -> str:
    """``prefix`` without leading/trailing/double slashes; refuses ``.`` and ``..`` segments,
    which S3 stores literally but which break every tool that maps keys to paths."""
    parts = [p for p in (prefix or "").split("/") if p]
    for part in parts:
        if part in (".", "..") or any(ord(c) < 32 or ord(c) == 127 for c in part):
            raise ValueError(f"key prefix {prefix!r} has an unsafe segment {part!r}")
    return "/".join(parts)


def join_key(*parts: str) -> str:
    """Join key parts with single slashes, skipping empty ones."""
    return "/".join(p for p in (normalize_prefix(x) for x in parts) if p)


def _check(name: str, value: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise ValueError(f"{name} {value!r} is not safe in an object key")
    return value


def key_stem(prefix: str, sku: str, variant: str, digest: str) -> str:
    """The key without its extension: what ``ImageStore.find_existing`` looks for, because
    the extension depends on the mime type the model chose to return."""
    _check("variant", variant, _SAFE_PART)
    _check("digest", digest, _HEX)
    return join_key(prefix, sanitize_sku(sku), f"{variant}-{digest}")


def object_key(prefix: str, sku: str, variant: str, digest: str, ext: str) -> str:
    """``{prefix}/{sanitized_sku}/{variant}-{digest}.{ext}`` (no leading slash; the prefix
    may be empty)."""
    ext = _check("extension", ext.lstrip(".").lower(), _EXT)
    return f"{key_stem(prefix, sku, variant, digest)}.{ext}"


def stem_of(key: str) -> str:
    """An object key without its extension (which depends on the format the model returned)."""
    return key.rsplit(".", 1)[0] if "." in key.rsplit("/", 1)[-1] else key


def ext_for_mime(mime: str) -> str:
    """File extension for an image mime type, so the key's extension matches the bytes
    (Google Merchant rejects a mismatch)."""
    base = (mime or "").split(";", 1)[0].strip().lower()
    try:
        return _MIME_EXT[base]
    except KeyError:
        raise ValueError(f"no image extension for mime type {mime!r}; expected PNG, JPEG or WebP") from None
