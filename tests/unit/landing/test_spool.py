"""The local spool: bounded, durable, and drained without losing or doubling an image."""
from __future__ import annotations

from pathlib import Path

import pytest

from bananaflow.errors import StorageError
from bananaflow.landing.spool import Spool
from bananaflow.reports.summary import summarize


class Bucket:
    """A store that is up or down on request (the unit-level stand-in for S3)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.down = False

    def put_image(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> bool:
        if self.down:
            raise StorageError("cannot reach S3 at http://127.0.0.1:1: is the server running?")
        self.objects[key] = data
        return True


def test_spool_is_bounded_and_says_so(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10)
    spool.put("p/a/main-1.png", b"123456", "image/png", {})
    with pytest.raises(OSError, match="is full"):
        spool.put("p/b/main-2.png", b"123456", "image/png", {})
    state = spool.state()
    assert (state.pending, state.bytes, state.max_bytes) == (1, 6, 10)
    spool.discard("p/a/main-1.png")
    spool.put("p/b/main-2.png", b"123456", "image/png", {})  # room again once uploaded


def test_find_upload_and_drain(tmp_path: Path) -> None:
    bucket = Bucket()
    spool = Spool(tmp_path)
    for i in range(3):
        spool.put(f"p/s{i}/main-abc.png", b"img%d" % i, "image/png", {"bananaflow-run-id": "r"})
    assert spool.find("p/s1/main-abc") == "p/s1/main-abc.png"
    assert spool.find("p/s9/main-abc") is None
    bucket.down = True
    with pytest.raises(StorageError):
        spool.upload("p/s1/main-abc.png", bucket)
    assert spool.drain(bucket) == 0 and spool.state().pending == 3  # nothing dropped while down
    bucket.down = False
    assert spool.upload("p/s1/main-abc.png", bucket) is True
    assert spool.upload("p/s1/main-abc.png", bucket) is False  # already gone: not uploaded twice
    assert spool.drain(bucket) == 2
    assert bucket.objects == {f"p/s{i}/main-abc.png": b"img%d" % i for i in range(3)}
    assert spool.state().pending == 0


def test_a_fresh_spool_object_sees_what_an_earlier_process_left(tmp_path: Path) -> None:
    Spool(tmp_path).put("k/x/main-1.png", b"abc", "image/png", {})
    later = Spool(tmp_path, max_bytes=4)
    with pytest.raises(OSError):
        later.put("k/y/main-2.png", b"ab", "image/png", {})  # 3 + 2 > 4: counted from disk


def test_summary_shows_the_spool() -> None:
    summary = summarize([], run_id="r", rejected=0, wall_s=1.0, bucket="b", prefix="p")
    summary.spool = {"pending": 3, "bytes": 3_000_000, "max_bytes": 2_000_000_000, "directory": "/s", "uploaded": 2}
    text = summary.to_markdown()
    assert "local spool: 3 images (3.0 MB of 2000 MB) waiting for S3 in /s; 2 uploaded from it by this run" in text
