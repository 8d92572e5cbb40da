"""Where images that did not pass the quality gate are kept, and the marker that says so.

An image that failed every allowed attempt (``needs_review``) or could not be judged
(``unchecked``) was paid for, so it is kept, but never where a published image lives:

* the image and its derivatives go under the store's ``review/`` prefix, mirroring the
  item's key (``{prefix}/review/{sku}/{variant}-{digest}.png``, ``...--thumb.jpg``), so a
  person (or ``bananaflow review``) lists one folder to see everything that waits;
* a small marker ``{key_stem}~review.json`` sits beside the item's own key. The first look a
  run takes at every item (one LIST of the stem, ``find_with_sidecars``) already sees it, so
  the next run knows, without another request, that this exact image (same prompt, model,
  size: the digest) waits for a person, was rejected, or still has to be judged.

The marker's body is JSON: status, the review key, the verdicts, what was paid, by which
run. A reviewer's decision rewrites it (``status: rejected``) rather than deleting it, so the
next run does not pay for an image that will fail the same way.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from bananaflow.landing.keys import join_key
from bananaflow.landing.verdict import NEEDS_REVIEW, REJECTED, UNCHECKED, Verdict

__all__ = [
    "REVIEW_CONTENT_TYPE", "REVIEW_FOLDER", "REVIEW_SUFFIX", "ReviewMarker", "find_review_marker", "item_stem_of",
    "read_review_marker", "review_key", "review_marker_key", "review_stem", "write_review_marker",
]

#: The folder (under the store's prefix) that holds every image waiting for a person.
REVIEW_FOLDER = "review"
REVIEW_SUFFIX = "~review"
REVIEW_CONTENT_TYPE = "application/json"
#: Statuses a marker may carry.
MARKER_STATUSES = (NEEDS_REVIEW, UNCHECKED, REJECTED)


class _MarkerStore(Protocol):
    def get_bytes(self, key: str) -> bytes: ...

    def put_image(
        self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> bool: ...


def review_stem(stem: str, prefix: str = "") -> str:
    """``{prefix}/review/{rest of stem}``: the item's key moved under the review folder."""
    prefix = prefix.strip("/")
    rest = stem[len(prefix) + 1:] if prefix and stem.startswith(prefix + "/") else stem
    return join_key(prefix, REVIEW_FOLDER, rest)


def item_stem_of(review_key_or_stem: str) -> str:
    """The item's own key stem of an image kept under ``review/`` (the inverse of
    ``review_stem``, without knowing the prefix: item keys end ``{sku}/{variant}-{digest}``)."""
    parts = review_key_or_stem.split("/")
    if len(parts) >= 3 and parts[-3] == REVIEW_FOLDER:
        del parts[-3]
    joined = "/".join(parts)
    return joined.rsplit(".", 1)[0] if "." in parts[-1] else joined


def review_key(stem: str, extension: str, prefix: str = "") -> str:
    return f"{review_stem(stem, prefix)}.{extension}"


def review_marker_key(stem: str) -> str:
    """``{stem}~review.json``: beside the item's own key, seen by its first LIST."""
    return stem + REVIEW_SUFFIX + ".json"


@dataclass(frozen=True)
class ReviewMarker:
    """What waits for a person about one item's image."""

    status: str  # needs_review, unchecked or rejected
    key: str  # the image under review/
    mime_type: str = ""
    run_id: str = ""
    at: str = ""
    prompt_sha256: str = ""
    model: str = ""
    cost_usd: float = 0.0
    attempts: int = 0
    qa_attempts: int = 0
    reasons: str = ""
    #: ``{derivative name: key}`` stored beside ``key`` (the thumbnail a reviewer sees)
    derivatives: dict[str, str] = field(default_factory=dict)
    verdicts: tuple[Verdict, ...] = ()
    #: who decided and when, for a person's decision (``bananaflow review``, the Prefect form)
    decided_by: str = ""
    decided_at: str = ""
    note: str = ""

    def to_json(self) -> bytes:
        data: dict[str, Any] = asdict(self)
        data["verdicts"] = [v.to_dict() for v in self.verdicts]
        return json.dumps(data, sort_keys=True, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, body: bytes) -> ReviewMarker:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("a review marker is a JSON object")
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        known["verdicts"] = tuple(Verdict.from_dict(v) for v in data.get("verdicts") or () if isinstance(v, dict))
        known["derivatives"] = {str(k): str(v) for k, v in (data.get("derivatives") or {}).items()}
        return cls(**known)


def write_review_marker(store: _MarkerStore, stem: str, marker: ReviewMarker) -> None:
    """Write (or replace) the marker of ``stem``."""
    store.put_image(review_marker_key(stem), marker.to_json(), REVIEW_CONTENT_TYPE,
                    {"bananaflow-review-status": marker.status})


def read_review_marker(store: _MarkerStore, stem: str) -> ReviewMarker | None:
    """The marker of ``stem`` (known to exist: ``find_with_sidecars`` listed it); None when
    it cannot be read as one (a marker is a saving, never a reason to fail an item)."""
    try:
        marker = ReviewMarker.from_json(store.get_bytes(review_marker_key(stem)))
    except (ValueError, TypeError, KeyError):
        return None
    return marker if marker.status in MARKER_STATUSES else None


def find_review_marker(stem: str, sidecars: list[str]) -> bool:
    """Whether one LIST of ``stem`` (its sidecars) shows a review marker."""
    return review_marker_key(stem) in sidecars
