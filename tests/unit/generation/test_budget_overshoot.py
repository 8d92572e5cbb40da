"""An answer billed above its reservation (more thinking than the worst case assumed)
stops all further sending, is reported, and the deferred items say why."""
from __future__ import annotations

import asyncio
import io

from PIL import Image

from bananaflow.generation.pipeline import ItemProcessor
from bananaflow.generation.retry import RetryPolicy
from bananaflow.limits.admission import Admission
from bananaflow.limits.budget import Budget, worst_case_cost_usd
from bananaflow.limits.settings import LimitSettings
from bananaflow.planning.work import WorkItem
from bananaflow.providers.base import GeneratedImage, ImageRequest, Usage
from bananaflow.providers.models import get_model
from bananaflow.testing.memory_store import MemoryStore

PRO = "gemini-3-pro-image"
WORST = worst_case_cost_usd(get_model(PRO), "1K")


def png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "white").save(out, format="PNG")
    return out.getvalue()


class _Thinker:
    """A provider whose answers cost twice the worst case."""

    name = "gemini"
    base_url = "http://127.0.0.1:9"

    def __init__(self) -> None:
        self.calls = 0

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        self.calls += 1
        await asyncio.sleep(0)
        return GeneratedImage(png((1024, 1024)), "image/png", 1024, 1024, request.model, Usage(), WORST * 2)

    async def aclose(self) -> None:
        """Nothing to close."""


def test_an_answer_billed_above_its_reservation_stops_sending_and_is_reported() -> None:
    admission = Admission(LimitSettings(max_in_flight=1), max_cost_usd=WORST * 10)
    provider = _Thinker()
    work = [WorkItem(i, f"S{i}", "main", f"mug {i}", PRO, "1:1", "1K", f"p/S{i}/main-{i}", "0" * 64) for i in range(6)]

    async def main() -> list:
        proc = ItemProcessor(provider, MemoryStore(), admission, RetryPolicy(max_attempts=1), run_id="r")
        return await proc.process_all(work)

    rows = asyncio.run(main())
    assert provider.calls == 1  # the first answer overshot: nothing more was sent
    budget = admission.budget
    assert isinstance(budget, Budget) and budget.stopped and budget.spent_usd <= WORST * 10
    deferred = [r for r in rows if r.status == "deferred"]
    assert len(deferred) == 5 and all("billed" in r.error_message and "--max-cost" in r.error_message for r in deferred)
    assert admission.report()["budget"]["overshoot_usd"] > 0
