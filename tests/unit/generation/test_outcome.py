"""One outcome per item: the dispatcher's ``ItemOutcome``, the error-effects table, the one
row constructor and the object-metadata codec."""
from __future__ import annotations

import ast
import asyncio
import time
from pathlib import Path

import pytest

from bananaflow.errors import (
    AuthError,
    BudgetExhausted,
    CircuitOpen,
    ContentBlocked,
    InvalidRequest,
    NoImageReturned,
    Overloaded,
    ProviderTimeout,
    QuotaExhausted,
    RateLimited,
    ServerError,
    StorageError,
)
from bananaflow.generation.dispatch import Billed, Dispatcher, effect_of
from bananaflow.generation.retry import RetryPolicy
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.object_meta import METADATA_SKU_CHARS, ObjectMeta
from bananaflow.landing.outcome import Charge, ItemOutcome, utc_now
from bananaflow.limits.admission import Admission
from bananaflow.limits.controller import RateController
from bananaflow.planning.work import WorkItem
from bananaflow.providers.base import GeneratedImage, ImageRequest, Usage

ROOT = Path(__file__).resolve().parents[3]
PRO = "gemini-3-pro-image"
FAST = RetryPolicy(max_attempts=4, initial_wait=0.0, max_wait=0.0, deadline_s=30, no_image_max_attempts=3)


def image(cost: float = 0.134) -> GeneratedImage:
    return GeneratedImage(b"png", "image/png", 1024, 1024, PRO, Usage(prompt_tokens=10, image_tokens=1120), cost)


class ScriptedProvider:
    """Answers each call from a script: an image or an error to raise."""

    name, base_url = "gemini", "http://127.0.0.1:1"

    def __init__(self, *answers: GeneratedImage | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def aclose(self) -> None:
        """Nothing opened."""


def dispatch(provider: ScriptedProvider, admission: Admission | None = None) -> ItemOutcome:
    dispatcher = Dispatcher({"sim": provider}, admission or Admission.for_controller(RateController(4)), FAST)
    return asyncio.run(dispatcher.generate(ImageRequest("a mug", PRO), "main"))


def billed_no_image(cost: float) -> NoImageReturned:
    exc = NoImageReturned("text only", finish_reason="STOP")
    exc.cost_usd, exc.usage = cost, Usage(prompt_tokens=10, thoughts_tokens=200)
    return exc


@pytest.mark.parametrize(
    ("error", "billed", "breaker", "fall_back"),
    [
        (RateLimited("429", retry_after=3.0), Billed.NOTHING, "", False),
        (QuotaExhausted("per day"), Billed.NOTHING, "", True),
        (Overloaded("503"), Billed.NOTHING, "failure", True),
        (ServerError("500"), Billed.NOTHING, "failure", True),
        (ProviderTimeout("read timed out"), Billed.WORST_CASE, "failure", True),
        (CircuitOpen("open"), Billed.NOTHING, "", True),
        (InvalidRequest("400"), Billed.AS_REPORTED, "success", False),
        (ContentBlocked("blocked", reason="IMAGE_SAFETY"), Billed.AS_REPORTED, "success", False),
        (NoImageReturned("text only"), Billed.AS_REPORTED, "success", False),
    ],
)
def test_one_table_says_what_each_error_means_for_budget_breaker_and_fallback(
    error: Exception, billed: Billed, breaker: str, fall_back: bool
) -> None:
    effect = effect_of(error)
    assert effect is not None
    assert (effect.billed, effect.breaker, effect.fall_back) == (billed, breaker, fall_back)


def test_errors_that_are_not_about_a_call_have_no_effects_row() -> None:
    assert effect_of(BudgetExhausted("cap")) is None and effect_of(ValueError("a bug")) is None


def test_billed_image_less_answers_then_an_image_add_up_in_one_outcome() -> None:
    provider = ScriptedProvider(billed_no_image(0.01), billed_no_image(0.02), image(0.134))
    outcome = dispatch(provider)
    assert outcome.status == "succeeded" and outcome.image is not None and outcome.attempts == 3
    assert [c.purpose for c in outcome.charges] == ["answer without a usable image"] * 2 + ["image"]
    assert outcome.cost_usd == pytest.approx(0.164)
    assert outcome.first_sent_at is not None and not outcome.retryable


def test_a_final_error_is_an_outcome_with_its_attempts_charges_and_retryability() -> None:
    provider = ScriptedProvider(*(billed_no_image(0.01) for _ in range(3)))
    outcome = dispatch(provider)
    assert (outcome.status, outcome.error_class, outcome.attempts) == ("failed", "NoImageReturned", 3)
    assert outcome.retryable and outcome.image is None
    assert outcome.cost_usd == pytest.approx(0.03)

    refused = dispatch(ScriptedProvider(AuthError("403 key invalid", http_status=403)))
    assert (refused.status, refused.attempts, refused.retryable, refused.charges) == ("failed", 1, False, ())


def test_server_errors_feed_the_breaker_and_a_parked_scope_is_not_sent_to() -> None:
    admission = Admission.for_controller(RateController(4))
    outcome = dispatch(ScriptedProvider(*(ServerError("500") for _ in range(4))), admission)
    assert outcome.attempts == 4 and outcome.retryable
    quota = dispatch(ScriptedProvider(QuotaExhausted("per day")), admission)
    assert quota.status == "deferred" and not quota.retryable
    provider = ScriptedProvider(image())
    parked = dispatch(provider, admission)
    assert parked.status == "deferred" and parked.attempts == 0 and provider.calls == 0


def test_retryability_is_decided_once_from_the_error_and_carried_by_the_row() -> None:
    item = WorkItem(2, "SKU-2", "main", "a mug", PRO, "1:1", "1K", "p/SKU-2/main-d2", "0" * 64)
    cases = {
        ServerError("502"): ("failed", True),
        StorageError("S3 away"): ("failed", True),
        ContentBlocked("no", reason="SAFETY"): ("blocked", False),
        BudgetExhausted("cap"): ("deferred", False),
        KeyError("a bug"): ("failed", False),
    }
    for error, (status, retryable) in cases.items():
        outcome = ItemOutcome.failure(error, started_at=utc_now(), t0=time.monotonic(), attempts=1)
        row = ManifestRow.from_outcome(item, outcome, run_id="r1")
        assert (row.status, row.retryable, row.error_class) == (status, retryable, type(error).__name__)
        assert row.model == PRO and row.key == "" and row.cost_usd is None
    spooled = ItemOutcome.failure(StorageError("S3 away"), started_at=utc_now(), t0=time.monotonic())
    assert not spooled.with_error(StorageError("S3 away"), status="spooled").retryable


def test_a_billed_failure_shows_its_cost_and_tokens_in_the_row() -> None:
    item = WorkItem(2, "SKU-2", "main", "a mug", PRO, "1:1", "1K", "p/SKU-2/main-d2", "0" * 64)
    charge = Charge("blocked answer", 0.004, Usage(prompt_tokens=300, thoughts_tokens=50))
    outcome = ItemOutcome.failure(ContentBlocked("blocked"), started_at=utc_now(), t0=time.monotonic(), attempts=1,
                                  charges=(charge,))
    row = ManifestRow.from_outcome(item, outcome, run_id="r1")
    assert (row.cost_usd, row.prompt_tokens, row.output_tokens) == (0.004, 300, 50)


def test_object_metadata_round_trips_through_one_codec() -> None:
    meta = ObjectMeta(run_id="r1", sku="x" * 1000, variant="main", row=7, model=PRO, width=1024, height=1024,
                      attempts=2, latency_s=12.3456, cost_usd=0.1341234, endpoint="gemini:host", derivatives="a.jpg")
    encoded = meta.encode()
    assert encoded["bananaflow-latency-s"] == "12.346" and encoded["bananaflow-cost-usd"] == "0.134123"
    assert len(encoded["bananaflow-sku"]) == METADATA_SKU_CHARS
    assert "bananaflow-batch" not in encoded  # empty values are not written
    decoded = ObjectMeta.decode({k.upper(): v for k, v in encoded.items()})  # S3 may change the case
    assert decoded.run_id == "r1" and decoded.row == 7 and decoded.attempts == 2 and decoded.cost_usd == 0.134123
    assert decoded.sku == "x" * METADATA_SKU_CHARS and decoded.endpoint == "gemini:host"


def test_metadata_that_does_not_parse_reads_as_absent() -> None:
    decoded = ObjectMeta.decode({"bananaflow-width": "wide", "bananaflow-cost-usd": "free", "other": "x"})
    assert decoded.width is None and decoded.cost_usd is None


def _calls_named(path: Path, name: str) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text("utf-8"))
    return [
        (path.name, node.lineno) for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
    ]


def test_only_the_one_constructor_builds_a_manifest_row() -> None:
    """Rows are built from outcomes (``ManifestRow.from_outcome``); the manifest reader and
    the row log rebuild stored rows; nothing else calls ``ManifestRow(...)``."""
    allowed = {"manifest.py", "rowlog.py"}
    found = [
        hit
        for folder in ("bananaflow/generation", "bananaflow/landing", "bananaflow/batch", "tasks", "flows")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for hit in _calls_named(path, "ManifestRow")
        if path.name not in allowed
    ]
    assert found == []


def test_attempts_are_never_read_off_an_exception() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("bananaflow", "tasks", "flows")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if '"attempts"' in line and "getattr" in line or ".attempts = " in line and "exc" in line
    ]
    assert offenders == []
