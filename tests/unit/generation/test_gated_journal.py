"""With the quality gate on, an answer is durable before it is checked, yet never published
unchecked: its journal entry waits under ``review/`` with an ``unchecked`` marker, so a run
that dies before the gate decides leaves an image the next run judges (without paying for it
again), and an image that ends ``needs_review`` leaves nothing in the spool that the next run
would upload under the item's own key."""
from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from bananaflow.generation.lander import ImageLander
from bananaflow.landing.outcome import Charge, ItemOutcome
from bananaflow.landing.review_store import read_review_marker, review_marker_key
from bananaflow.landing.spool import Spool
from bananaflow.landing.verdict import NEEDS_REVIEW, UNCHECKED
from bananaflow.planning.work import WorkItem
from bananaflow.providers.base import GeneratedImage, Usage
from bananaflow.testing.memory_store import MemoryStore


class _Store(MemoryStore):
    """The in-memory store, keeping bytes too (markers are read back)."""

    prefix = ""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, bytes] = {}

    def put_image(self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str] | None = None,
                  **_: object) -> bool:
        self.data[key] = data
        return super().put_image(key, data, content_type, metadata)

    def get_bytes(self, key: str) -> bytes:
        return self.data[key]

    def exists(self, key: str) -> bool:
        return key in self.data


STEM = "SKU-1/main-d1"
ITEM = WorkItem(1, "SKU-1", "main", "a mug", "gemini-3-pro-image", "1:1", "1K", STEM, "a" * 64)


def _answer(colour: str) -> ItemOutcome:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buf, "PNG")
    image = GeneratedImage(buf.getvalue(), "image/png", 32, 32, ITEM.model, Usage(prompt_tokens=10), 0.134)
    return ItemOutcome(status="succeeded", started_at=datetime.now(UTC), attempts=1, image=image,
                       charges=(Charge("image", 0.134),))


def test_a_run_that_dies_before_the_gate_decides_leaves_an_unchecked_image_not_a_published_one(tmp_path: Path) -> None:
    spool, store = Spool(tmp_path / "spool"), _Store()
    lander = ImageLander(store, run_id="r1", spool=spool)
    asyncio.run(lander.journal_answer(ITEM, _answer("red"), gated=True))
    # the process is killed here; the next run drains the spool first
    assert Spool(tmp_path / "spool").drain(store) == 1
    assert store.find_existing(STEM) is None, "nothing unchecked under the item's own key"
    marker = read_review_marker(store, STEM)
    assert marker is not None and marker.status == UNCHECKED and store.exists(marker.key)
    assert marker.key.startswith("review/") and marker.cost_usd == 0.134


def test_an_image_left_for_review_leaves_nothing_in_the_spool_for_the_items_key(tmp_path: Path) -> None:
    spool, store = Spool(tmp_path / "spool"), _Store()
    lander = ImageLander(store, run_id="r1", spool=spool)
    first = _answer("red")
    journal = asyncio.run(lander.journal_answer(ITEM, first, gated=True))
    failed = _answer("blue")  # the regeneration, which failed its checks too
    landed = asyncio.run(lander.land(ITEM, ItemOutcome(**{**_fields(failed), "status": NEEDS_REVIEW}), journal=journal))
    assert landed.status == NEEDS_REVIEW and landed.stored is not None and landed.stored.key.startswith("review/")
    assert list((tmp_path / "spool").glob("*.bin")) == []
    assert Spool(tmp_path / "spool").drain(store) == 0 and store.find_existing(STEM) is None
    assert store.exists(review_marker_key(STEM))


def test_a_passed_image_is_published_and_its_early_journal_dropped(tmp_path: Path) -> None:
    spool, store = Spool(tmp_path / "spool"), _Store()
    lander = ImageLander(store, run_id="r1", spool=spool)
    answer = _answer("red")
    journal = asyncio.run(lander.journal_answer(ITEM, answer, gated=True))
    landed = asyncio.run(lander.land(ITEM, answer, journal=journal))
    assert landed.status == "succeeded" and store.find_existing(STEM) == f"{STEM}.png"
    assert list((tmp_path / "spool").glob("*.bin")) == []
    assert not store.exists(review_marker_key(STEM))


def _fields(outcome: ItemOutcome) -> dict[str, object]:
    return {name: getattr(outcome, name) for name in outcome.__dataclass_fields__}
