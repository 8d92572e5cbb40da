"""The quality gate with fakes (a provider and a judge in this process, an in-memory store):
free checks before the judge, regeneration with the reasons, needs_review after the allowed
attempts, fail closed when the judge is down, the budget counting judge calls, and the next
run sending nothing for what waits for a person while judging what was never judged."""
from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass, field

import pytest
from PIL import Image

from bananaflow.errors import JudgeUnavailable, ServerError
from bananaflow.generation.gate import JudgeCaller, QualityGate, feedback_corrections
from bananaflow.generation.pipeline import ItemProcessor
from bananaflow.generation.retry import RetryPolicy
from bananaflow.landing.outcome import Charge
from bananaflow.landing.review_store import read_review_marker, review_marker_key
from bananaflow.landing.verdict import CheckResult, Verdict
from bananaflow.limits.admission import Admission
from bananaflow.limits.controller import RateController
from bananaflow.limits.settings import LimitSettings
from bananaflow.planning.work import WorkItem
from bananaflow.providers.base import GeneratedImage, ImageRequest, Usage
from bananaflow.quality.judge_api import JudgeAnswer, JudgeInput
from bananaflow.testing.memory_store import MemoryStore

PRO = "gemini-3-pro-image"
FAST = RetryPolicy(max_attempts=3, initial_wait=0.0, max_wait=0.01, deadline_s=30)
IMAGE_COST = 0.134
JUDGE_COST = 0.002


def png(colour: tuple[int, int, int], *, square: bool = True) -> bytes:
    image = Image.new("RGB", (64, 64), (255, 255, 255))
    if square:
        image.paste(colour, (8, 8, 56, 56))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class BytesStore(MemoryStore):
    """The in-memory store, keeping bytes too (an unchecked image is read back to judge it)."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, bytes] = {}

    def put_image(self, key, data, content_type, metadata=None):  # noqa: ANN001, ANN201
        self.data[key] = data
        return super().put_image(key, data, content_type, metadata)

    def get_bytes(self, key: str) -> bytes:
        return self.data[key]

    def delete(self, key: str) -> None:
        self.data.pop(key, None)
        self.objects.pop(key, None)
        self._sorted.remove(key) if key in self._sorted else None


@dataclass
class FakeProvider:
    """Answers every request with an image; ``blank`` SKUs get a blank one."""

    blank: tuple[str, ...] = ()
    name: str = "gemini"
    base_url: str = "https://fake.test"
    prompts: list[str] = field(default_factory=list)

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        self.prompts.append(request.prompt)
        blank = any(s in request.prompt for s in self.blank)
        return GeneratedImage(png((40, 40, 40), square=not blank), "image/png", 64, 64, request.model,
                              Usage(prompt_tokens=10, image_tokens=1120), IMAGE_COST)

    async def aclose(self) -> None:
        pass


@dataclass
class FakeJudge:
    """Fails the first image of a SKU in ``fail_first``; always
    fails SKUs in ``always``; raises ``down`` (a class) when set."""

    fail_first: tuple[str, ...] = ()
    always: tuple[str, ...] = ()
    down: type[Exception] | None = None
    model: str = "gemini-flash-judge"
    seen: list[JudgeInput] = field(default_factory=list)

    def worst_case_cost(self, request: JudgeInput) -> float:
        return 0.01

    async def judge(self, request: JudgeInput) -> JudgeAnswer:
        self.seen.append(request)
        if self.down is not None:
            raise self.down("judge is down") if self.down is not JudgeUnavailable else JudgeUnavailable(
                "invalid JSON", cause="BadResponse", cost_usd=JUDGE_COST)
        sku = request.facts.sku
        earlier = sum(1 for r in self.seen if r.facts.sku == sku) - 1
        bad = sku in self.always or (sku in self.fail_first and earlier == 0)
        checks = (CheckResult("same_product", not bad, "the label text is garbled" if bad else ""),)
        return JudgeAnswer(Verdict(not bad, checks, model=self.model), Charge("judge", JUDGE_COST))


def item(sku: str, **facts: str) -> WorkItem:
    return WorkItem(1, sku, "main", f"A photo of {sku}", PRO, "1:1", "1K", f"p/{sku}/main-d1", "a" * 64,
                    facts=tuple(facts.items()))


def run(store: MemoryStore, work: list[WorkItem], judge: FakeJudge, *, run_id: str = "night-1",
        provider: FakeProvider | None = None, max_cost: float | None = None, attempts: int = 2,
        retry_rejected: bool = False):  # noqa: ANN201
    provider = provider or FakeProvider()
    admission = Admission(LimitSettings(max_in_flight=4), max_cost_usd=max_cost)

    async def main():  # noqa: ANN202
        caller = JudgeCaller(judge, RateController(4, scope="judge"), FAST, admission.budget)
        gate = QualityGate(caller, max_regenerations=attempts)
        processor = ItemProcessor(provider, store, admission, FAST, run_id=run_id, quality=gate,
                                  retry_rejected=retry_rejected)
        return await processor.process_all(work)

    return asyncio.run(main()), provider, admission


def test_an_image_that_fails_once_is_made_again_with_the_reasons_and_published():
    store, judge = BytesStore(), FakeJudge(fail_first=("MUG",))
    [row], provider, _ = run(store, [item("MUG", title="Blue mug", color="blue")], judge)
    assert row.status == "succeeded" and row.qa_attempts == 1 and row.attempts == 2
    assert provider.prompts[0] != provider.prompts[1]
    assert "the label text is garbled" in provider.prompts[1]  # the reasons went back as corrections
    assert provider.prompts[1].startswith(provider.prompts[0])
    verdicts = json.loads(row.verdicts)
    assert [(v["stage"], v["passed"]) for v in verdicts] == [("free", True), ("judge", False), ("free", True),
                                                            ("judge", True)]
    assert row.judge_cost_usd == pytest.approx(2 * JUDGE_COST)
    assert row.cost_usd == pytest.approx(2 * IMAGE_COST + 2 * JUDGE_COST)
    assert row.key == "p/MUG/main-d1.png" and store.find_existing("p/MUG/main-d1")
    assert judge.seen[0].facts.title == "Blue mug" and judge.seen[0].facts.colour == "blue"


def test_an_image_that_always_fails_ends_needs_review_under_the_review_prefix():
    store, judge = BytesStore(), FakeJudge(always=("CUP",))
    [row], provider, _ = run(store, [item("CUP")], judge)
    assert row.status == "needs_review" and row.error_class == "ChecksFailed"
    assert len(provider.prompts) == 3 and row.qa_attempts == 2  # the first image and two regenerations
    assert row.key == "review/p/CUP/main-d1.png" and store.find_existing("p/CUP/main-d1") is None
    assert "same_product: the label text is garbled" in row.qa_reasons
    marker = read_review_marker(store, "p/CUP/main-d1")
    assert marker is not None and marker.status == "needs_review" and marker.key == row.key
    assert len(marker.verdicts) == 6 and marker.run_id == "night-1"

    # the next run sends nothing for it ...
    [again], provider2, _ = run(store, [item("CUP")], judge, run_id="night-2")
    assert again.status == "needs_review" and provider2.prompts == [] and again.cost_usd is None
    assert "--retry-rejected" in again.error_message
    # ... unless asked to
    [retried], provider3, _ = run(store, [item("CUP")], FakeJudge(), run_id="night-3", retry_rejected=True)
    assert retried.status == "succeeded" and len(provider3.prompts) == 1
    assert review_marker_key("p/CUP/main-d1") not in store.objects


def test_free_checks_fail_a_blank_image_without_paying_for_the_judge():
    store, judge = BytesStore(), FakeJudge()
    [row], provider, _ = run(store, [item("BLANK")], judge, provider=FakeProvider(blank=("BLANK",)), attempts=1)
    assert row.status == "needs_review" and "not_blank" in row.qa_reasons
    assert judge.seen == [] and row.judge_cost_usd == 0 and len(provider.prompts) == 2


@pytest.mark.parametrize("down", [ServerError, JudgeUnavailable])
def test_a_judge_that_stays_down_keeps_the_image_unchecked_and_the_next_run_judges_it(down):
    store = BytesStore()
    [row], provider, _ = run(store, [item("LAMP")], FakeJudge(down=down))
    assert row.status == "unchecked" and len(provider.prompts) == 1
    assert row.key == "review/p/LAMP/main-d1.png" and store.find_existing("p/LAMP/main-d1") is None
    assert row.cost_usd >= IMAGE_COST  # the image is paid for and kept

    judge = FakeJudge()
    [judged], provider2, _ = run(store, [item("LAMP")], judge, run_id="night-2")
    assert provider2.prompts == []  # judged without generating again
    assert judged.status == "succeeded" and len(judge.seen) == 1
    assert judged.key == "p/LAMP/main-d1.png" and store.find_existing("p/LAMP/main-d1")
    assert judged.cost_usd == pytest.approx(JUDGE_COST)
    assert review_marker_key("p/LAMP/main-d1") not in store.objects


def test_the_budget_counts_judge_calls_and_regenerations():
    store = BytesStore()
    # room for two images and a judge call, not for the third image
    [row], provider, admission = run(store, [item("CUP")], FakeJudge(always=("CUP",)), max_cost=0.34)
    assert admission.budget is not None and admission.budget.spent_usd <= 0.34
    assert row.status == "needs_review" and len(provider.prompts) == 2
    assert "could not be made again" in row.error_message and "--max-cost" in row.error_message


def test_corrections_quote_the_reasons_and_edit_only_local_failures():
    local = Verdict(False, (CheckResult("text_and_labels", False, "garbled"), CheckResult("clean_image", True)))
    text, edit = feedback_corrections("A mug", [Verdict(True, stage="free"), local])
    assert edit and text.startswith("A mug") and '"garbled"' in text
    structural = Verdict(False, (CheckResult("single_product", False, "a hand"),))
    text, edit = feedback_corrections("A mug", [structural])
    assert not edit and '"a hand"' in text
