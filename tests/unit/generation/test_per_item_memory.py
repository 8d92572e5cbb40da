"""What a long run keeps per item: slim rows and items, shared metadata names, a compact
in-memory store, and ``ItemProcessor.process_stream`` holding only a window of items."""
import asyncio
import pickle

import pytest

from bananaflow.generation.pipeline import ItemProcessor
from bananaflow.generation.retry import RetryPolicy
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.object_meta import META_PREFIX, ObjectMeta, meta_key
from bananaflow.limits.controller import RateController
from bananaflow.planning.work import WorkItem
from bananaflow.providers.base import GeneratedImage, ImageRequest, Usage
from bananaflow.testing.memory_store import MemoryStore

FLASH = "gemini-3.1-flash-image"
FAST = RetryPolicy(max_attempts=2, initial_wait=0.0, max_wait=0.0, deadline_s=30)


def items(n: int) -> list[WorkItem]:
    return [WorkItem(i, f"SKU-{i}", "main", f"photo {i}", FLASH, "1:1", "512", f"p/SKU-{i}/main-d{i}", f"{i:064x}")
            for i in range(n)]


def image() -> GeneratedImage:
    return GeneratedImage(b"\x89PNG fake", "image/png", 512, 512, FLASH, Usage(10, 1290, 0, 1290, 1300), 0.02)


class CountingProvider:
    """Counts requests in progress; holds every answer until ``hold_until`` requests are in
    progress at once (so a test sees the window fill, however slow the machine), then
    answers at once."""

    name = "gemini"
    base_url = "http://provider.test"

    def __init__(self, hold_until: int = 1) -> None:
        self.hold_until = hold_until
        self.gate = asyncio.Event()
        self.active = 0
        self.most_active = 0
        self.sent = 0
        self.cancelled = 0

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        self.sent += 1
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            if self.active >= self.hold_until:
                self.gate.set()
            await self.gate.wait()
            await asyncio.sleep(0)
            return image()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.active -= 1

    async def aclose(self) -> None:
        """Nothing to close: no connection was opened."""


def processor(provider: CountingProvider, store: MemoryStore | None = None) -> ItemProcessor:
    # no in-flight cap: the window is the only bound on what is in progress
    return ItemProcessor(provider, store or MemoryStore(), RateController(None), FAST, run_id="r1")


def test_rows_and_items_carry_no_per_instance_dict_and_still_pickle():
    row = ManifestRow(run_id="r", row_number=1, sku="s", variant="v", status="succeeded",
                      started_at="2026-01-01T00:00:00.000Z")
    item = items(1)[0]
    assert not hasattr(row, "__dict__") and not hasattr(item, "__dict__")
    assert pickle.loads(pickle.dumps(row)) == row
    assert pickle.loads(pickle.dumps(item)) == item


def test_every_objects_metadata_shares_the_same_name_strings():
    first, second = (ObjectMeta(run_id="r1", sku=item.sku, row=item.row_number, attempts=1, latency_s=0.5).encode()
                     for item in items(2))
    assert list(first) == list(second)
    assert all(a is b for a, b in zip(first, second))
    assert meta_key("sku") == META_PREFIX + "sku"


def test_memory_store_gives_back_what_was_put_and_finds_only_the_exact_stem():
    store = MemoryStore()
    store.put_image("p/a/main-1.png", b"one", "image/png", {"bananaflow-run-id": "r1", "bananaflow-width": "512"})
    store.put_image("p/a/main-10.jpeg", b"ten", "image/jpeg", {"bananaflow-run-id": "r2"})
    head = store.head("p/a/main-1.png")
    assert (head.content_type, head.size, head.metadata) == (
        "image/png", 3, {"bananaflow-run-id": "r1", "bananaflow-width": "512"})
    assert store.find_existing("p/a/main-1") == "p/a/main-1.png"
    assert store.find_existing("p/a/main-10") == "p/a/main-10.jpeg"
    assert store.find_existing("p/a/main") is None
    store.put_image("p/a/main-1.png", b"again", "image/png", {})  # overwritten, still one key
    assert store.head("p/a/main-1.png").size == 5 and len(store.objects) == 2
    with pytest.raises(KeyError):
        store.head("p/a/missing.png")


def test_a_re_run_reads_its_own_rows_back_from_the_memory_store():
    provider, store = CountingProvider(), MemoryStore()
    work = items(3)
    first = asyncio.run(processor(provider, store).process_all(work))
    again = asyncio.run(processor(provider, store).process_all(work))
    assert [r.status for r in first] == [r.status for r in again] == ["succeeded"] * 3
    assert provider.sent == 3  # the second pass found every image and paid for none
    assert [(r.key, r.width, r.image_tokens) for r in again] == [(r.key, r.width, r.image_tokens) for r in first]


def test_process_stream_yields_every_row_with_at_most_window_items_in_progress():
    provider = CountingProvider(hold_until=7)

    async def main() -> list[ManifestRow]:
        return [row async for row in processor(provider).process_stream(iter(items(50)), window=7)]

    rows = asyncio.run(main())
    assert sorted(r.row_number for r in rows) == list(range(50))
    assert {r.status for r in rows} == {"succeeded"}
    assert provider.sent == 50
    assert provider.most_active == 7


def test_leaving_process_stream_early_cancels_what_is_in_progress():
    provider = CountingProvider()

    async def main() -> tuple[int, int]:
        got = 0
        stream = processor(provider).process_stream(items(100), window=5)
        async for _ in stream:
            got += 1
            if got == 3:
                break
        await stream.aclose()
        return got, provider.active

    got, active = asyncio.run(main())
    assert got == 3 and active == 0
    assert provider.sent < 100


def test_process_stream_passes_on_an_error_of_the_items_iterable():
    def broken():
        yield from items(2)
        raise RuntimeError("catalog reader failed")

    async def main() -> list[ManifestRow]:
        return [row async for row in processor(CountingProvider()).process_stream(broken(), window=3)]

    with pytest.raises(RuntimeError, match="catalog reader failed"):
        asyncio.run(main())


def test_process_stream_refuses_an_empty_window():
    async def main() -> list[ManifestRow]:
        return [row async for row in processor(CountingProvider()).process_stream(items(1), window=0)]

    with pytest.raises(ValueError, match="window"):
        asyncio.run(main())
