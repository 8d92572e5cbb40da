"""One run's items, from every task thread, through one event loop and one window of workers.

A chunk task used to run its own items on its own event loop and wait for the slowest one
before its thread took more work: with 16 task threads each holding a small chunk, a deep
in-flight cap (64, 128) was never full, since only the items of the chunks being run could
ask for a slot, and every chunk ended with a tail of idle slots. The pump decouples the two:
chunk tasks put their items on one shared queue and wait for their own rows, while
``window`` workers on the pump's loop take the next queued item, from whichever chunk, as
soon as they finish one. A slot that frees is refilled at once, whatever the chunking of
task runs; the rate controller, not the window, still decides when each request goes.

It also means one provider client (one connection pool) and one event loop per run instead
of one per chunk task.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Sequence

from bananaflow.generation.pipeline import ItemProcessor
from bananaflow.landing.manifest import ManifestRow
from bananaflow.planning.work import WorkItem

__all__ = ["ItemPump", "window_for"]


def window_for(max_in_flight: int, judge_in_flight: int = 0) -> int:
    """Items in progress at once: the in-flight cap plus room for items between requests
    (checking S3, uploading, waiting for a retry) so that they do not hold a slot idle, plus
    one worker per judge call the quality gate may have in flight: an item waiting for its
    verdict holds a worker, never an image slot, so a slow judge does not idle the image model."""
    return max(16, 2 * max(1, max_in_flight) + max(0, judge_in_flight) + 8)


class ItemPump:
    """A thread with an event loop, an ``ItemProcessor`` and ``window`` workers; ``process``
    may be called from any thread and blocks until that call's items have their rows."""

    def __init__(
        self,
        make_processor: Callable[[], ItemProcessor],
        *,
        window: int,
        close_processor: Callable[[ItemProcessor], Awaitable[None]] | None = None,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self._make_processor = make_processor
        self._close_processor = close_processor
        self._loop = asyncio.new_event_loop()
        # S3 calls go through ``asyncio.to_thread``: the default executor (cores + 4 threads) would
        # make them the bottleneck of a whole run on one loop
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=min(64, max(8, window)),
                                                               thread_name_prefix="bananaflow-io")
        self._loop.set_default_executor(self._executor)
        self._thread = threading.Thread(target=self._loop.run_forever, name="bananaflow-pump", daemon=True)
        self._queue: asyncio.Queue[tuple[WorkItem, concurrent.futures.Future[ManifestRow]]] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._processor: ItemProcessor | None = None

    def __enter__(self) -> ItemPump:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()

    async def _start(self) -> None:
        self._processor = self._make_processor()  # built on the pump's loop: its client belongs here
        self._queue = asyncio.Queue()
        self._workers = [asyncio.create_task(self._worker()) for _ in range(self.window)]

    async def _worker(self) -> None:
        assert self._queue is not None and self._processor is not None
        while True:
            item, future = await self._queue.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(await self._processor.process(item))  # ``process`` never raises
                except BaseException as exc:  # cancelled while closing: the caller must not hang
                    future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("the run was stopped"))
                    if not isinstance(exc, Exception):
                        raise

    def submit(self, items: Sequence[WorkItem]) -> list[concurrent.futures.Future[ManifestRow]]:
        """Queue items (in order, behind what is queued); one future per item."""
        futures: list[concurrent.futures.Future[ManifestRow]] = [concurrent.futures.Future() for _ in items]

        def enqueue() -> None:
            assert self._queue is not None
            for pair in zip(items, futures):
                self._queue.put_nowait(pair)

        self._loop.call_soon_threadsafe(enqueue)
        return futures

    def process(self, items: Sequence[WorkItem]) -> list[ManifestRow]:
        """The rows of ``items``, in their order, once all are done."""
        return [future.result() for future in self.submit(items)]

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._executor.shutdown(wait=True)

    async def _stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        if self._queue is not None:  # items never started: their callers get an error, not a hang
            while not self._queue.empty():
                _, future = self._queue.get_nowait()
                if future.set_running_or_notify_cancel():
                    future.set_exception(RuntimeError("the run was stopped before this item started"))
        if self._processor is not None and self._close_processor is not None:
            await self._close_processor(self._processor)
