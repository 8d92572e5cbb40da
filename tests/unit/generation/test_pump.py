"""The run's item pump: a freed slot is refilled from any chunk, whatever waits in another."""
import asyncio
import threading

import pytest

from bananaflow.generation.pipeline import ItemProcessor
from bananaflow.generation.pump import ItemPump, window_for
from bananaflow.generation.retry import RetryPolicy
from bananaflow.limits.controller import RateController
from bananaflow.planning.work import WorkItem, chunk_size_for
from bananaflow.providers.base import GeneratedImage, ImageRequest, Usage
from bananaflow.testing.memory_store import MemoryStore

FLASH = "gemini-3.1-flash-image"
FAST = RetryPolicy(max_attempts=1, initial_wait=0.0, max_wait=0.0, deadline_s=30)


def item(i: int, prompt: str = "photo") -> WorkItem:
    return WorkItem(i, f"SKU-{i:03d}", "main", f"{prompt} {i}", FLASH, "1:1", "512", f"p/SKU-{i}/main-d{i}", f"{i:064x}")


class SlowFirstProvider:
    """Answers at once, except a prompt starting with ``slow`` waits until ``release`` is set."""

    name = "gemini"
    base_url = "http://provider.test"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.closed = False

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        while request.prompt.startswith("slow") and not self.release.is_set():
            await asyncio.sleep(0.005)
        return GeneratedImage(b"\x89PNG fake", "image/png", 512, 512, FLASH, Usage(10, 1290, 0, 1290, 1300), 0.02)

    async def aclose(self) -> None:
        self.closed = True


def pump_for(provider: SlowFirstProvider, window: int) -> ItemPump:
    async def close(processor: ItemProcessor) -> None:
        await processor.provider.aclose()

    return ItemPump(lambda: ItemProcessor(provider, MemoryStore(), RateController(window), FAST, run_id="r1"),
                    window=window, close_processor=close)


def test_a_chunk_waiting_for_its_slowest_item_leaves_no_slot_idle():
    provider = SlowFirstProvider()
    with pump_for(provider, window=2) as pump:
        held = pump.submit([item(0, "slow"), item(1)])  # chunk A: its first item holds a slot
        other = pump.process([item(i) for i in range(2, 30)])  # chunk B, from another "task thread"
        assert [r.status for r in other] == ["succeeded"] * 28  # done on the one free slot meanwhile
        assert held[1].done() and not held[0].done()
        provider.release.set()
        assert [f.result(timeout=10).sku for f in held] == ["SKU-000", "SKU-001"]
    assert provider.closed


def test_chunks_from_many_threads_each_get_their_own_rows_in_order():
    provider = SlowFirstProvider()
    results: dict[int, list[str]] = {}
    with pump_for(provider, window=4) as pump:
        def chunk(n: int) -> None:
            results[n] = [r.sku for r in pump.process([item(n * 10 + i) for i in range(10)])]

        threads = [threading.Thread(target=chunk, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == {n: [f"SKU-{n * 10 + i:03d}" for i in range(10)] for n in range(6)}


def test_closing_with_items_queued_fails_their_callers_instead_of_hanging():
    provider = SlowFirstProvider()
    pump = pump_for(provider, window=1)
    pump.start()
    futures = pump.submit([item(0, "slow"), item(1)])
    pump.close()
    for future in futures:
        with pytest.raises(RuntimeError):
            future.result(timeout=10)


def test_chunks_running_at_once_queue_a_few_times_a_deep_cap():
    for cap in (8, 64, 128):
        size = chunk_size_for(480, cap, workers=16)
        assert 16 * size >= 4 * cap or size * 16 >= 480
    assert window_for(64) >= 128


def test_a_run_stays_within_a_few_hundred_task_runs_whatever_its_size() -> None:
    for total in (10, 480, 10_000, 30_000, 100_000, 250_000):
        size = chunk_size_for(total, 32, workers=16)
        task_runs = -(-total // size)
        assert task_runs <= 300, (total, size)
        assert size <= max(100, -(-total // 300))  # chunks grow only when the catalog needs it
    assert chunk_size_for(10_000, 32) == 100  # 100 task runs: as before
    assert chunk_size_for(100_000, 32) == 334  # 300 task runs, not 1,000
