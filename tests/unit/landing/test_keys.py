"""Object keys: safe, unique and deterministic whatever the SKU holds."""
from __future__ import annotations

import re

import pytest

from bananaflow.landing.keys import ext_for_mime, key_stem, object_key, params_hash, sanitize_sku

SAFE = re.compile(r"^[A-Za-z0-9._-]{1,80}$")
NASTY = [
    "../../etc/passwd", "..", ".", "/", "a/b", "a b", "a  b", "A B", "ÄÖÜ-ß", "ＡＢＣ", "ABC",
    "tab\there", "nl\nx", "nul\x00x", "del\x7f", "😀", "", " ", "-", "a..b", ".hidden",
    "x" * 1000, "x" * 1000 + "y", "x" * 80, "x" * 81, "SKU#1?2&3=4", "sku%2F", "sku/", "/sku",
]


@pytest.mark.parametrize("sku", NASTY)
def test_every_sku_becomes_one_safe_segment(sku: str) -> None:
    out = sanitize_sku(sku)
    assert SAFE.match(out), out
    assert ".." not in out and not out.startswith(".") and "/" not in out
    assert sanitize_sku(sku) == out  # deterministic


def test_distinct_skus_stay_distinct() -> None:
    outs = [sanitize_sku(s) for s in NASTY]
    assert len(set(outs)) == len(NASTY)
    assert sanitize_sku("a/b") != sanitize_sku("a b") != sanitize_sku("a-b")


def test_clean_skus_are_unchanged_and_changed_ones_carry_a_hash() -> None:
    assert sanitize_sku("MUG-01") == "MUG-01"
    assert sanitize_sku("00123") == "00123"
    assert sanitize_sku("x" * 80) == "x" * 80
    assert re.fullmatch(r"a-b-[0-9a-f]{8}", sanitize_sku("a b"))
    assert re.fullmatch(r"ABC-[0-9a-f]{8}", sanitize_sku("ＡＢＣ"))
    long = sanitize_sku("x" * 1000)
    assert len(long) == 80 and re.fullmatch(r"x{71}-[0-9a-f]{8}", long)
    assert re.fullmatch(r"sku-[0-9a-f]{8}", sanitize_sku(""))


def test_params_hash_is_canonical() -> None:
    a = params_hash("p", "m", {"size": "2K", "ratio": "1:1", "refs": [b"img"]})
    b = params_hash("p", "m", {"ratio": "1:1", "refs": (b"img",), "size": "2K"})
    assert a == b and re.fullmatch(r"[0-9a-f]{12}", a)
    assert params_hash("p", "m", {"size": "4K"}) != params_hash("p", "m", {"size": "2K"})
    assert params_hash("p2", "m", {}) != params_hash("p", "m", {})
    assert params_hash("p", "m2", {}) != params_hash("p", "m", {})
    with pytest.raises(TypeError):
        params_hash("p", "m", {"x": object()})


def test_object_key_layout() -> None:
    assert object_key("/runs/", "MUG 01", "main", "abc123", "png") == (
        f"runs/{sanitize_sku('MUG 01')}/main-abc123.png"
    )
    assert object_key("", "MUG-01", "main", "abc123", ".JPG") == "MUG-01/main-abc123.jpg"
    assert key_stem("a//b", "../x", "lifestyle", "00ff") == f"a/b/{sanitize_sku('../x')}/lifestyle-00ff"
    with pytest.raises(ValueError):
        object_key("a/../b", "s", "main", "ab", "png")
    with pytest.raises(ValueError):
        object_key("", "s", "main/x", "ab", "png")
    with pytest.raises(ValueError):
        object_key("", "s", "main", "not-hex", "png")


def test_ext_for_mime() -> None:
    assert ext_for_mime("image/png") == "png"
    assert ext_for_mime("image/jpeg") == "jpg"
    assert ext_for_mime("IMAGE/WEBP; q=1") == "webp"
    with pytest.raises(ValueError):
        ext_for_mime("image/gif")
