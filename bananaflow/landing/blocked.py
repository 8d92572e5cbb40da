"""Remembering a safety block beside the image key, so a re-run does not pay for it again.

A blocked answer is billed (prompt and thinking tokens) and the same prompt is blocked
again, so re-sending every blocked item every night is money for nothing. When an item ends
``blocked`` a small marker object ``{key_stem}~blocked.json`` is written; its metadata says
why, when and by which run. The next run finds it (``find_existing`` of
``{key_stem}~blocked``: one LIST, only for items whose image is missing) and reports the item
``blocked`` again without a request.

The key stem's digest covers the prompt, model, ratio, size and template, so a changed
prompt is a new key and is sent; ``--retry-blocked`` (``spend.retry_blocked``) sends blocked
items again on purpose and removes the marker when the image is made. The marker does not
end in an image extension, so ``find_existing(key_stem)`` never takes it for the image.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

BLOCKED_SUFFIX = "~blocked"
BLOCKED_CONTENT_TYPE = "application/json"
_META = "bananaflow-blocked-"


class _MarkerStore(Protocol):
    """What the marker needs of ``ImageStore`` (the in-memory store has it too)."""

    def find_existing(self, stem: str) -> str | None: ...

    def head(self, key: str) -> Any: ...

    def put_image(
        self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> bool: ...


def blocked_stem(stem: str) -> str:
    """The stem ``find_existing`` looks up: the marker's key is ``{stem}~blocked.json``."""
    return stem + BLOCKED_SUFFIX


def blocked_key(stem: str) -> str:
    return blocked_stem(stem) + ".json"


@dataclass(frozen=True)
class BlockedMarker:
    """Why an item was blocked, kept as the marker's object metadata (and its body)."""

    reason: str
    message: str
    run_id: str
    at: str
    prompt_sha256: str = ""
    model: str = ""

    def metadata(self) -> dict[str, str]:
        return {_META + name: value[:300] for name, value in asdict(self).items()}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> BlockedMarker:
        values = {name: metadata.get(_META + name, "") for name in cls.__dataclass_fields__}
        return cls(**values)


def find_block(store: _MarkerStore, stem: str) -> BlockedMarker | None:
    """The marker of ``stem`` if an earlier run left one."""
    if store.find_existing(blocked_stem(stem)) is None:
        return None
    return read_block(store, stem)


def read_block(store: _MarkerStore, stem: str) -> BlockedMarker:
    """The marker of ``stem``, known to exist (``find_with_sidecars`` saw it)."""
    return BlockedMarker.from_metadata(store.head(blocked_key(stem)).metadata)


def remember_block(store: _MarkerStore, stem: str, marker: BlockedMarker) -> None:
    """Write (or replace) the marker of ``stem``."""
    body = json.dumps(asdict(marker), separators=(",", ":")).encode()
    store.put_image(blocked_key(stem), body, BLOCKED_CONTENT_TYPE, marker.metadata())


def forget_block(store: _MarkerStore, stem: str) -> None:
    """Remove the marker once the image exists (``--retry-blocked`` made it after all): one
    DELETE, which S3 answers the same whether or not a marker was there, so no LIST first. A
    store that cannot delete (the in-memory one) keeps it, which only costs a LIST."""
    delete = getattr(store, "delete", None)
    if delete is not None:
        delete(blocked_key(stem))
