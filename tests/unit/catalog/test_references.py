"""Reference photos from files and a real local HTTP server: fetched, scaled, limited."""
from __future__ import annotations

import asyncio
import functools
import http.server
import io
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from bananaflow.catalog.references import ReferenceFetcher, ReferencePhotoError, resolve_link
from bananaflow.catalog.safe_fetch import FetchPolicy
from bananaflow.planning.work import WorkItem
from tests.paths import FIXTURES

PHOTOS = FIXTURES / "photos"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        """Keep the test output free of one access-log line per request."""


@pytest.fixture(scope="module")
def photo_server() -> Iterator[str]:
    """The fixtures folder over real HTTP on a free port."""
    handler = functools.partial(_Quiet, directory=str(FIXTURES))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def item(*links: str, model: str = "gemini-3-pro-image", max_side: int = 2048, group: str = "") -> WorkItem:
    return WorkItem(
        row_number=2, sku="S", variant="main", prompt="p", model=model, aspect_ratio="1:1", image_size="1K",
        key_stem="p/S/main-abc", prompt_sha256="0" * 64, reference_links=links, max_reference_side=max_side,
        group_reference_stem=group, reference_root=str(FIXTURES),
    )


def size_of(blob: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(blob)).size


def test_local_photo_is_scaled_to_the_limit_and_sent_as_jpeg() -> None:
    photos = asyncio.run(ReferenceFetcher().for_item(item(str(PHOTOS / "mug.png"), max_side=1024), store=None))
    assert len(photos) == 1 and photos[0].mime_type == "image/jpeg"
    assert size_of(photos[0].data) == (1024, 768)  # 2400x1800 scaled, ratio kept


def test_http_photo_and_a_missing_one(photo_server: str) -> None:
    fetcher = ReferenceFetcher(timeout_s=5, policy=FetchPolicy(allow_private=True))  # a LAN photo server
    photos = asyncio.run(fetcher.for_item(item(f"{photo_server}/photos/shirt.png"), store=None))
    assert size_of(photos[0].data) == (2048, 1536)
    with pytest.raises(ReferencePhotoError, match=r"reference photo http://127.0.0.1:\d+/photos/nope.jpg cannot be used"):
        asyncio.run(fetcher.for_item(item(f"{photo_server}/photos/nope.jpg?sig=secret"), store=None))


def test_undecodable_and_unreachable_photos_fail_their_item(tmp_path: Path) -> None:
    fetcher = ReferenceFetcher(timeout_s=2)
    with pytest.raises(ReferencePhotoError, match="broken.jpg is not a readable image"):
        asyncio.run(fetcher.for_item(item(str(PHOTOS / "broken.jpg")), store=None))
    with pytest.raises(ReferencePhotoError, match="cannot be used"):
        asyncio.run(fetcher.for_item(item(str(FIXTURES / "gone.jpg")), store=None))
    for link in ("http://169.254.169.254/latest/meta-data/", "http://metadata.google.internal/x", "http://[fe80::1]/a"):
        with pytest.raises(ReferencePhotoError, match="cannot be used"):
            asyncio.run(fetcher.for_item(item(link), store=None))


def test_the_models_reference_limit_is_respected() -> None:
    links = tuple(str(PHOTOS / f"{n}.png") for n in ("mug", "shirt", "board", "mug", "shirt"))
    older = asyncio.run(ReferenceFetcher().for_item(item(*links, model="gemini-2.5-flash-image"), store=None))
    assert len(older) == 3  # gemini-2.5-flash-image takes at most 3
    assert len(asyncio.run(ReferenceFetcher().for_item(item(*links), store=None))) == 5


class _Store:
    """The two store methods a group reference needs, over a dict."""

    bucket = "b"

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def find_existing(self, stem: str) -> str | None:
        return next((k for k in self.objects if k.startswith(stem + ".")), None)

    def get_bytes(self, key: str) -> bytes:
        return self.objects[key]


def test_group_reference_comes_second_and_a_missing_leader_fails_the_item() -> None:
    leader = (PHOTOS / "board.png").read_bytes()
    store = _Store({"p/LEAD/main-123.png": leader})
    photos = asyncio.run(ReferenceFetcher().for_item(item(str(PHOTOS / "mug.png"), group="p/LEAD/main-123"), store))
    assert len(photos) == 2
    assert Image.open(io.BytesIO(photos[1].data)).getpixel((1000, 800))[0] > 100  # the board's brown
    with pytest.raises(ReferencePhotoError, match="first product of this item_group_id has no image"):
        asyncio.run(ReferenceFetcher().for_item(replace(item(), group_reference_stem="p/OTHER/main-1"), store))


def test_relative_links_resolve_against_the_catalog_folder(tmp_path: Path) -> None:
    assert resolve_link("../photos/a.jpg", tmp_path / "cat") == str(tmp_path / "photos" / "a.jpg")
    assert resolve_link("https://x/a.jpg", tmp_path) == "https://x/a.jpg"
    assert resolve_link("../photos/a.jpg", "s3://shop/feeds/") == "s3://shop/photos/a.jpg"
    assert resolve_link("a.jpg", "s3://shop/") == "s3://shop/a.jpg"


def test_edit_mode_is_refused_up_front_on_a_provider_without_it() -> None:
    from bananaflow.catalog.references import require_edit_mode
    from bananaflow.errors import ConfigurationError

    require_edit_mode([item("x.jpg")], "gemini")
    require_edit_mode([item()], "openai")
    with pytest.raises(ConfigurationError, match="variant 'main' sends reference photos, which the openai provider"):
        require_edit_mode([item(), item("x.jpg")], "openai")
