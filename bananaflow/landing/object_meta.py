"""The ``bananaflow-*`` metadata of a stored image: one codec, written and read here only.

A re-run reads it back to tell its own objects (a retried chunk of the same run) from an
earlier run's, and to report what an image cost without asking the provider again. Values
are S3 user metadata, so strings; a value that does not parse reads as absent, never as an
error: an object is never refused for its metadata.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, fields

#: Object metadata bananaflow writes, read back to recognise its own objects on a re-run.
META_PREFIX = "bananaflow-"

#: S3 allows 2 KB of metadata per object. A merchant's SKU can be 1,000 characters (and
#: triple in size once percent-encoded); the key and the manifest keep it whole, so the
#: metadata copy is cut rather than let an upload of a paid image fail.
METADATA_SKU_CHARS = 64
#: Likewise for the QA problems of an image kept under ``qa-failed/``.
METADATA_PROBLEM_CHARS = 300


@functools.cache
def meta_key(name: str) -> str:
    """``bananaflow-<name>``, one shared string per name: every object's metadata uses the
    same key objects instead of building new strings per image (a store that keeps
    metadata, such as the in-memory one, would otherwise hold 1 KB of keys per image)."""
    return META_PREFIX + name


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    """What bananaflow records on every image it stores. Field ``x_y`` is metadata key
    ``bananaflow-x-y``; ``None``/``""`` fields are not written."""

    run_id: str = ""
    sku: str = ""
    variant: str = ""
    row: int | None = None
    model: str = ""
    image_size: str = ""
    aspect_ratio: str = ""
    width: int | None = None
    height: int | None = None
    attempts: int | None = None
    latency_s: float | None = None
    prompt_tokens: int | None = None
    image_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    prompt_sha256: str = ""
    mode: str = ""
    batch: str = ""
    endpoint: str = ""
    #: ``amazon-main.jpg,thumb.jpg``: the derivatives stored beside the original
    derivatives: str = ""
    #: why an image kept under ``qa-failed/`` failed its preset's checks
    qa_problems: str = ""

    def encode(self) -> dict[str, str]:
        """The S3 user metadata for these values."""
        out: dict[str, str] = {}
        for f in _FIELDS:
            value = getattr(self, f.name)
            if value is None or value == "":
                continue
            if f.name == "sku":
                value = value[:METADATA_SKU_CHARS]
            elif f.name == "qa_problems":
                value = value[:METADATA_PROBLEM_CHARS]
            elif f.name == "latency_s":
                value = f"{value:.3f}"
            elif f.name == "cost_usd":
                value = f"{value:.6f}"
            out[_KEYS[f.name]] = str(value)
        return out

    @classmethod
    def decode(cls, metadata: Mapping[str, str]) -> ObjectMeta:
        """Read what ``encode`` wrote (keys in any case; unknown keys ignored)."""
        lowered = {k.lower(): v for k, v in metadata.items()}
        values: dict[str, object] = {}
        for f in _FIELDS:
            raw = lowered.get(_KEYS[f.name])
            if raw is None or raw == "":
                continue
            parsed = _parse(raw, _KINDS[f.name])
            if parsed is not None:
                values[f.name] = parsed
        return cls(**values)  # type: ignore[arg-type]  # each value parsed to its field's kind above


def _parse(raw: str, kind: type) -> object | None:
    if kind is str:
        return raw
    try:
        value: object = kind(raw)
    except ValueError:
        return None
    return value


_FIELDS = fields(ObjectMeta)
_KEYS = {f.name: meta_key(f.name.replace("_", "-")) for f in _FIELDS}
_KINDS: dict[str, type] = {
    f.name: int if "int" in str(f.type) else float if "float" in str(f.type) else str for f in _FIELDS
}
