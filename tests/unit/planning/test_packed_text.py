"""Planned items keep their prompts packed, yet every reader sees the text."""
import dataclasses
import hashlib
import pickle

import pytest

from bananaflow.planning import packed_text
from bananaflow.planning.packed_text import pack, pack_hex_digest, stored, unpack, unpack_hex_digest
from bananaflow.planning.work import WorkItem

WORDING = ("A professional e-commerce studio photograph of {title}, shot as the main product image for an online "
           "store. Seamless pure white background with soft, even studio lighting. Never invent text or logos.")


def prompt(title: str) -> str:
    return WORDING.format(title=title)


def item(title: str) -> WorkItem:
    text = prompt(title)
    return WorkItem(2, "SKU-1", "main", text, "gemini-3.1-flash-image", "1:1", "1K", "p/SKU-1/main-abc",
                    hashlib.sha256(text.encode()).hexdigest())


def test_a_prompt_packs_to_a_fraction_of_its_text_and_back() -> None:
    pack(prompt("Stoneware mug 1"))  # the first prompt of a template is the dictionary of the rest
    text = prompt("Stoneware mug 2, ocean blue")
    packed = pack(text)
    assert isinstance(packed, bytes) and len(packed) < len(text) / 4
    assert unpack(packed) == text


def test_short_and_non_ascii_texts_come_back_unchanged() -> None:
    assert pack("photo 1") == "photo 1"
    text = prompt("Tasse en grès « bleu océan » — 日本語")
    assert unpack(pack(text)) == text


def test_a_work_item_holds_the_packed_prompt_and_digest_but_reads_as_text() -> None:
    pack(prompt("warm-up"))
    work_item = item("Stoneware mug 7")
    assert isinstance(stored(work_item, "prompt"), bytes)
    assert len(stored(work_item, "prompt")) < 100
    digest = stored(work_item, "prompt_sha256")
    assert isinstance(digest, bytes) and len(digest) == 32
    assert work_item.prompt == prompt("Stoneware mug 7")
    assert work_item.prompt_sha256 == hashlib.sha256(work_item.prompt.encode()).hexdigest()


def test_pickle_asdict_replace_and_equality_see_the_text() -> None:
    work_item = item("Stoneware mug 8")
    assert pickle.loads(pickle.dumps(work_item)) == work_item
    assert dataclasses.asdict(work_item)["prompt"] == prompt("Stoneware mug 8")
    assert dataclasses.replace(work_item, sku="SKU-2").prompt == work_item.prompt
    assert item("Stoneware mug 8") == work_item and item("Stoneware mug 9") != work_item
    assert hash(item("Stoneware mug 8")) == hash(work_item)
    assert "Stoneware mug 8" in repr(work_item)


def test_the_item_stays_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        item("mug").prompt = "other"  # type: ignore[misc]


def test_a_digest_that_is_not_lowercase_hex_is_kept_as_it_is() -> None:
    assert pack_hex_digest("0" * 64) == bytes(32)
    assert unpack_hex_digest(pack_hex_digest("ab" * 32)) == "ab" * 32
    for odd in ("A" * 64, "z" * 64, "abc", ""):
        assert pack_hex_digest(odd) == odd


def test_dictionaries_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packed_text, "_dictionaries", [])
    monkeypatch.setattr(packed_text, "_by_opening", {})
    texts = [f"{i:05d} is the product number, and " + WORDING.format(title=f"mug {i}") for i in range(200)]
    packed = [pack(text) for text in texts]
    assert len(packed_text._dictionaries) == packed_text.MAX_DICTIONARIES
    assert [unpack(p) for p in packed] == texts
