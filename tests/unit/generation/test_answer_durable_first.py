"""A paid-for answer is on disk (the spool) before anything else is done with it, even when
the run's I/O threads are all busy: at the start of a run they are queued with the S3
look-ups of the next items, and an answer waiting behind them was lost to a ``kill -9``
(and paid again by the next run). The end-to-end kill is in tests/e2e/ops/test_early_kill.py."""
from __future__ import annotations

import asyncio
import concurrent.futures
import io
import threading
import time
from pathlib import Path

from PIL import Image

from bananaflow.generation.pipeline import ItemProcessor
from bananaflow.generation.retry import RetryPolicy
from bananaflow.landing.spool import Spool
from bananaflow.limits.admission import Admission
from bananaflow.limits.settings import LimitSettings
from bananaflow.planning.work import WorkItem
from bananaflow.providers.base import GeneratedImage, ImageRequest, Usage
from bananaflow.testing.memory_store import MemoryStore

IO_THREADS = 2


class _AnswerThenBusyThreads:
    """Answers at once, and leaves every I/O thread of the loop busy until ``free`` is set
    (as the S3 look-ups of the next items do at the start of a run)."""

    name = "fake"
    base_url = "http://fake.invalid"

    def __init__(self, free: threading.Event) -> None:
        self.free = free
        buf = io.BytesIO()
        Image.new("RGB", (32, 32), "white").save(buf, "PNG")
        self.png = buf.getvalue()

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        loop = asyncio.get_running_loop()
        for _ in range(IO_THREADS):
            loop.run_in_executor(None, self.free.wait)
        return GeneratedImage(self.png, "image/png", 32, 32, request.model, Usage(prompt_tokens=10), 0.134)

    async def aclose(self) -> None:
        return None


def test_an_answer_is_spooled_while_every_io_thread_is_busy(tmp_path: Path) -> None:
    free = threading.Event()
    spool = Spool(tmp_path / "spool")
    store = MemoryStore()
    item = WorkItem(1, "SKU-1", "main", "a mug", "gemini-3-pro-image", "1:1", "1K", "p/SKU-1/main-d1", "a" * 64)

    async def main() -> tuple[list[Path], str]:
        asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(IO_THREADS))
        processor = ItemProcessor(_AnswerThenBusyThreads(free), store, Admission(LimitSettings(max_in_flight=1)),
                                  RetryPolicy(max_attempts=1), run_id="r", spool=spool)
        task = asyncio.create_task(processor.process(item))
        deadline = time.monotonic() + 5.0
        spooled: list[Path] = []
        while not spooled and time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.02)
            spooled = list((tmp_path / "spool").glob("*.bin"))
        free.set()  # the I/O threads finish their work; the upload goes on
        row = await task
        return spooled, row.status

    try:
        spooled, status = asyncio.run(main())
    finally:
        free.set()
    assert len(spooled) == 1, "the answer waited in memory behind the busy I/O threads"
    assert status == "succeeded"
    assert store.find_existing("p/SKU-1/main-d1") == "p/SKU-1/main-d1.png"
    assert list((tmp_path / "spool").glob("*.bin")) == []  # uploaded, then dropped from the spool
