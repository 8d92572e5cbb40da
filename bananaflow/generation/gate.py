"""The quality gate: every image checked before it is published, failures made again with the
reasons as corrections, what still fails left for a person.

One gate, one vocabulary. Per image, after its output preset:

1. free checks (no cost): the preset's pixel rules (today's preset QA, now the first stage),
   a blank or near-uniform image, the same image returned for two products of the run;
2. the vision judge, only when the free checks passed: its call is reserved in the run's
   budget before it is sent (``--max-cost`` counts judge calls too) and goes through the
   judge model's *own* rate controller with the same retries and error taxonomy as an image
   request (``bananaflow.generation.retry``), never through the image model's slots;
3. on a failed verdict, the image is made again with the reasons added to the prompt
   (the judge's feedback builder), at most ``max_regenerations`` times, each regeneration
   reserved in the budget like any image request (the dispatcher does that).

An image ends ``succeeded`` (passed), ``needs_review`` (failed every allowed attempt, or the
budget/provider stopped the regeneration) or ``unchecked`` (the judge could not answer:
fail closed, the image is kept and judged by the next run without being made again). Every
verdict goes into ``ItemOutcome.verdicts``; judge charges have purpose ``judge`` and the
image charges of a regeneration ``regeneration: image``.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from bananaflow.errors import BananaflowError, JudgeUnavailable, ProviderError
from bananaflow.generation.dispatch import BUDGET_POLL_S, effect_of
from bananaflow.generation.retry import RetryPolicy, call_with_retries
from bananaflow.landing.outcome import Charge, ItemOutcome
from bananaflow.landing.output_presets import Finished, QAReport, finish, get_preset
from bananaflow.landing.verdict import NEEDS_REVIEW, UNCHECKED, Verdict
from bananaflow.limits.breaker import CircuitBreaker
from bananaflow.limits.budget import Budget
from bananaflow.limits.controller import RateController
from bananaflow.limits.meters import Demand
from bananaflow.planning.work import WorkItem
from bananaflow.providers.base import ImageRequest, ReferenceImage
from bananaflow.providers.models import get_model
from bananaflow.quality.feedback import plan_regeneration
from bananaflow.quality.free_checks import DuplicateWatcher, check_not_blank, free_verdict, preset_verdict
from bananaflow.quality.judge_api import Judge, JudgeAnswer, JudgeInput, ProductFacts

__all__ = [
    "ChecksFailed", "Corrections", "FreeChecks", "JudgeCaller", "NotJudged", "QualityGate", "RunFreeChecks",
    "facts_of", "feedback_corrections", "gate_for_run", "judge_in_flight_for", "judge_share",
]

log = logging.getLogger("bananaflow.generation.gate")

#: Purposes of the charges the gate adds (``ItemOutcome.charges``).
JUDGE_PURPOSE = "judge"
REGENERATION_PREFIX = "regeneration: "


class ChecksFailed(BananaflowError):
    """The image failed its checks on every allowed attempt: kept under ``review/``, not
    published, not made again by the next run unless its row changes (``--retry-rejected``)."""

    status = NEEDS_REVIEW


class NotJudged(JudgeUnavailable):
    """The budget (``--max-cost``) left no room for the judge call: fail closed like a judge
    that is down (the image is kept ``unchecked`` and judged by the next run)."""


class FreeChecks(Protocol):
    """Checks that cost nothing, run before the judge."""

    def check(self, image: bytes, *, item: WorkItem, report: QAReport | None) -> Verdict: ...


class RunFreeChecks:
    """The free stage of one run (``bananaflow.quality.free_checks``): a blank image, the same
    image returned for two products of the run (one watcher for the whole run), and the
    output preset's pixel rules (what ``qa_failed`` was before the gate)."""

    def __init__(self) -> None:
        self.duplicates = DuplicateWatcher()

    def check(self, image: bytes, *, item: WorkItem, report: QAReport | None) -> Verdict:
        blank = check_not_blank(image)
        checks = [*blank.checks]
        if blank.passed:  # a blank image matches every other blank one: not a duplicate finding
            checks += self.duplicates.check(item.sku, item.variant, image).checks
        if report is not None:
            checks += preset_verdict(report).checks
        return free_verdict(checks)


#: ``(original prompt, the item's verdicts so far) -> (prompt of the next attempt, edit the
#: failed image?)``: what the next attempt sends after failed checks.
Corrections = Callable[[str, Sequence[Verdict]], tuple[str, bool]]


def feedback_corrections(prompt: str, verdicts: Sequence[Verdict]) -> tuple[str, bool]:
    """The judge's feedback builder (``bananaflow.quality.feedback.plan_regeneration``): the
    original prompt plus the reasons as corrections, and whether to edit the failed image
    (local failures: a label, an artifact) or start afresh (anything structural)."""
    plan = plan_regeneration(prompt, verdicts)
    return plan.prompt, plan.edit_failed_image


def facts_of(item: WorkItem) -> ProductFacts:
    """The catalog's facts about the item's product, as the judge gets them (quoted data)."""
    known = dict(item.facts)
    named = ("title", "color", "material", "brand", "label_text")
    return ProductFacts(
        sku=item.sku, title=known.get("title", ""), colour=known.get("color", ""), material=known.get("material", ""),
        brand=known.get("brand", ""), label_text=known.get("label_text", ""),
        other=tuple((k, v) for k, v in item.facts if k not in named),
    )


class JudgeCaller:
    """One judge model's calls for a run: its own rate controller (the judge model has its
    own quota), the run's budget, and the retry policy of image requests."""

    def __init__(self, judge: Judge, controller: RateController, policy: RetryPolicy, budget: Budget | None = None) -> None:
        self.judge = judge
        self.controller = controller
        self.policy = policy
        self.budget = budget
        # the judge has no fallback route: a breaker would only fail items retries carry through
        self.breaker = CircuitBreaker(2**31, 30.0)

    @property
    def model(self) -> str:
        return self.judge.model

    async def __call__(self, request: JudgeInput, charges: list[Charge]) -> JudgeAnswer:
        """A verdict, or ``JudgeUnavailable`` once retries are spent; what each billed
        answer cost is appended to ``charges`` either way."""
        worst = self.judge.worst_case_cost(request)
        demand = Demand(images=0, cost_usd=worst)
        budget = self.budget

        async def attempt() -> JudgeAnswer:
            while budget is not None and (budget.stopped or not budget.can_afford(worst)):
                if budget.stopped or not budget.fits_once_settled(worst):
                    raise NotJudged(f"not judged: the run's budget (--max-cost) has no room for the judge call of "
                                    f"{self.model}; the image is kept and judged by the next run", cause="BudgetExhausted")
                await asyncio.sleep(BUDGET_POLL_S)
            async with self.controller.slot(demand) as lease:
                if budget is not None and not budget.reserve(worst):
                    raise NotJudged("not judged: the run's budget (--max-cost) is committed", cause="BudgetExhausted")
                billed = worst
                self.controller.record_sent()
                try:
                    answer = await self.judge.judge(request)
                    billed = answer.charge.cost_usd
                except ProviderError as exc:
                    effect = effect_of(exc)
                    billed = exc.cost_usd if effect is not None and effect.billed.value == "as reported" else (
                        worst if effect is not None and effect.billed.value == "worst case" else 0.0)
                    if effect is not None:
                        effect.apply(exc, self.controller, self.breaker)
                    if billed:
                        charges.append(Charge(JUDGE_PURPOSE, billed))
                    raise
                except JudgeUnavailable as exc:
                    billed = exc.cost_usd
                    if billed:
                        charges.append(Charge(JUDGE_PURPOSE, billed))
                    raise
                finally:
                    self.controller.settle(lease, demand, billed)
                    if budget is not None:
                        budget.settle(worst, billed)
                self.controller.record_success()
                charges.append(answer.charge)
                return answer

        try:
            answer, _ = await call_with_retries(attempt, self.policy)
        except ProviderError as exc:
            raise JudgeUnavailable(f"the judge {self.model} gave no verdict: {exc.message}",
                                   cause=type(exc).__name__) from None
        return answer


@dataclass(frozen=True)
class _Attempt:
    """One image of the item and what the gate found about it."""

    outcome: ItemOutcome
    finished: Finished | None


class QualityGate:
    """The gate of one run. ``judge`` None: free checks only (a run whose judge is off but
    that still wants the preset's checks regenerated with reasons)."""

    def __init__(
        self,
        judge: JudgeCaller | None,
        *,
        max_regenerations: int = 2,
        free_checks: FreeChecks | None = None,
        corrections: Corrections = feedback_corrections,
    ) -> None:
        self.judge = judge
        self.max_regenerations = max_regenerations
        self.free_checks: FreeChecks = free_checks or RunFreeChecks()
        self.corrections = corrections

    async def check(
        self,
        item: WorkItem,
        outcome: ItemOutcome,
        request: ImageRequest,
        send: Callable[[ImageRequest], Awaitable[ItemOutcome]],
        *,
        context: str = "",
    ) -> tuple[ItemOutcome, Finished | None]:
        """Check ``outcome``'s image and regenerate until it passes or the attempts are
        spent. The returned outcome holds the last image (paid for, always kept), every
        verdict and every charge; its status says where it lands."""
        assert outcome.image is not None, "the gate checks an outcome with an image"
        current = _Attempt(outcome, await self._finish(item, outcome))
        regenerations = 0
        while True:
            verdict, current = await self._judge(item, current, request.reference_images, request.prompt)
            if verdict is None:  # the judge could not answer: fail closed
                return current.outcome, current.finished
            if verdict.passed:
                return _with_gate(current.outcome, regenerations), current.finished
            if regenerations >= self.max_regenerations:
                failed = ChecksFailed(f"failed its checks after {regenerations + 1} image(s): " + "; ".join(verdict.reasons))
                return _with_gate(current.outcome, regenerations).with_error(failed), current.finished
            regenerations += 1
            log.info("%s: %s; regenerating (%d of %d) with the reasons as corrections", context,
                     "; ".join(verdict.reasons), regenerations, self.max_regenerations)
            prompt, edit = self.corrections(request.prompt, current.outcome.verdicts)
            failed_image = current.outcome.image
            references = request.reference_images
            if edit and failed_image is not None:  # the failed image first, then the real product
                most = get_model(request.model).max_reference_images
                references = (ReferenceImage(failed_image.data, failed_image.mime_type), *references)[:most]
            second = await send(replace(request, prompt=prompt, reference_images=references))
            merged = replace(current.outcome, attempts=current.outcome.attempts + second.attempts,
                             charges=(*current.outcome.charges,
                                      *(replace(c, purpose=REGENERATION_PREFIX + c.purpose) for c in second.charges)))
            if second.image is None:  # budget, provider: keep the paid image, a person decides
                stopped = ChecksFailed(f"failed its checks ({'; '.join(verdict.reasons)}) and could not be made "
                                       f"again: {second.error_message}")
                return _with_gate(merged, regenerations).with_error(stopped), current.finished
            merged = replace(merged, image=second.image, model=second.model, endpoint=second.endpoint)
            current = _Attempt(merged, await self._finish(item, merged))

    async def judge_kept(
        self, item: WorkItem, outcome: ItemOutcome, references: tuple[ReferenceImage, ...]
    ) -> tuple[ItemOutcome, Finished | None]:
        """Judge an image an earlier run paid for but could not judge (``unchecked``),
        without generating it again: passed, ``needs_review`` or still ``unchecked``."""
        current = _Attempt(outcome, await self._finish(item, outcome))
        verdict, current = await self._judge(item, current, references, item.prompt)
        if verdict is None or verdict.passed:
            return current.outcome, current.finished
        failed = ChecksFailed("failed its checks: " + "; ".join(verdict.reasons))
        return current.outcome.with_error(failed), current.finished

    async def _finish(self, item: WorkItem, outcome: ItemOutcome) -> Finished | None:
        if not item.output_preset or outcome.image is None:
            return None
        return await asyncio.to_thread(finish, outcome.image.data, item.output_preset)

    async def _judge(
        self, item: WorkItem, current: _Attempt, references: tuple[ReferenceImage, ...], asked: str
    ) -> tuple[Verdict | None, _Attempt]:
        """The free checks, then (if they passed) the judge: the verdict, or None when the
        judge could not answer (the outcome then says ``unchecked``)."""
        image = current.outcome.image
        assert image is not None
        report = current.finished.report if current.finished is not None else None
        free = await asyncio.to_thread(self.free_checks.check, image.data, item=item, report=report)
        outcome = replace(current.outcome, verdicts=(*current.outcome.verdicts, free))
        if report is not None:
            outcome = replace(outcome, qa=report.to_json())
        if not free.passed or self.judge is None:
            return free, _Attempt(outcome, current.finished)
        published = current.finished.derivatives[0] if current.finished is not None else None
        request = JudgeInput(
            image=published.data if published is not None else image.data,
            mime_type=published.mime_type if published is not None else image.mime_type,
            facts=facts_of(item), references=references, asked=asked,
            preset_rules=get_preset(item.output_preset).description if item.output_preset else "",
        )
        charges: list[Charge] = []
        try:
            answer = await self.judge(request, charges)
        except JudgeUnavailable as exc:
            message = f"not published: {exc.message}; the image is kept and judged by the next run"
            kept = replace(outcome, charges=(*outcome.charges, *charges))
            return None, _Attempt(replace(kept.with_error(exc, status=UNCHECKED, message=message),
                                          retryable=False), current.finished)
        outcome = replace(outcome, verdicts=(*outcome.verdicts, answer.verdict), charges=(*outcome.charges, *charges))
        return answer.verdict, _Attempt(outcome, current.finished)


def gate_for_run(
    judge: Judge | None,
    *,
    max_regenerations: int,
    budget: Budget | None,
    policy: RetryPolicy,
    judge_max_in_flight: int,
    free_checks: FreeChecks | None = None,
    corrections: Corrections = feedback_corrections,
) -> QualityGate:
    """The gate of one run: the judge behind its own rate controller (scope ``judge/<model>``,
    ``judge_max_in_flight`` calls at once), the run's budget and retry policy."""
    caller = None
    if judge is not None:
        controller = RateController(max(1, judge_max_in_flight), scope=f"judge/{judge.model}")
        caller = JudgeCaller(judge, controller, policy, budget)
    return QualityGate(caller, max_regenerations=max_regenerations, free_checks=free_checks, corrections=corrections)


def judge_in_flight_for(image_max_in_flight: int) -> int:
    """Judge calls at once: a Flash judge answers in a few seconds and its quota is far larger
    than an image model's, so as many as there are image slots keep the judge off the
    critical path; each waiting item holds a pump worker, not an image slot."""
    return max(4, image_max_in_flight)


def _with_gate(outcome: ItemOutcome, regenerations: int) -> ItemOutcome:
    return replace(outcome, qa_attempts=regenerations)


def judge_share(outcome: ItemOutcome) -> float:
    """What the judge cost this item."""
    return round(sum(c.cost_usd for c in outcome.charges if c.purpose == JUDGE_PURPOSE), 6)
