"""Every recorded answer in ``tests/fixtures/wire/`` through the real client, over HTTP.

Each payload is served byte for byte by a local HTTP server (``wire_replay.WireServer``)
to the real provider (httpx, ``providers.gemini`` / ``providers.openai_images``,
``providers.classify``); the test asserts the class, the manifest status, the retry
decision, the server delay, the billed cost and what the message keeps. Provenance of each
file is in ``tests/fixtures/wire/PROVENANCE.md`` (``modelled_*`` files: see its last section).
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

import pytest

from bananaflow.errors import ProviderError, QuotaExhausted, error_status, is_retryable
from bananaflow.providers import ImageRequest, make_provider
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import Secret
from tests.paths import FIXTURES
from tests.unit.providers.wire_replay import Reply, WireServer

pytestmark = pytest.mark.e2e  # every corpus payload through the real client over HTTP: in `make test`, not `make test-fast`

WIRE = FIXTURES / "wire"
PRO, FLASH25 = "gemini-3-pro-image", "gemini-2.5-flash-image"


@dataclass(frozen=True)
class Case:
    """What the client must make of one payload. ``cls`` "ok" means a GeneratedImage."""

    cls: str
    status: str = "failed"
    retry: bool = False
    delay: float | None = None
    cost: float = 0.0
    says: tuple[str, ...] = ()
    kind: str = "gemini"
    model: str = PRO
    headers: dict[str, str] = field(default_factory=dict)
    file: str = ""


def ok(cost: float, *, model: str = PRO, kind: str = "gemini") -> Case:
    return Case("ok", "succeeded", cost=cost, model=model, kind=kind)


def oa(cls: str, status: str = "failed", **kw: object) -> Case:
    return Case(cls, status, kind="openai", **kw)  # type: ignore[arg-type]


BLOCKED = dict(status="blocked", retry=False)
DEFERRED = dict(status="deferred", retry=False)

CASES: dict[str, Case] = {
    # ---- Gemini / Vertex 200s with an image: priced from the reported tokens
    "gemini25flashimage_200_text_and_image.json": ok(0.03882, model=FLASH25),
    "vertex_gemini25flashimage_200_image_only.json": ok(0.038703, model=FLASH25),
    "vertex_gemini25flashimage_200_text_and_image.json": ok(0.038715, model=FLASH25),
    # unflagged text + image parts with thoughtSignature; usage larger than its details:
    # 1120 image tokens at the image rate, the other 163 output + 174 thought tokens as text
    "gemini3proimage_200_text_and_image_thoughtsignature.json": ok(0.138472),
    "gemini3proimage_200_google_search_grounding.json": ok(0.148734),
    "gemini_200_stream_image_mldev_final_image_chunk.json": ok(0.155166),
    "modelled_gemini3proimage_200_flagged_thought_image.json": ok(0.138224),
    # three unflagged drafts (the last image is the answer), counts as strings, no
    # candidatesTokensDetails: the image at list price ($0.134), not 1130 tokens of text
    "modelled_gemini3proimage_200_unflagged_drafts_usage_strings.json": ok(0.139216),
    # ---- blocks (status blocked, not retried) bill what was reported: prompt + thinking
    "gemini_200_finish_safety_content_empty.json": Case("ContentBlocked", **BLOCKED, cost=0.000028, says=("SAFETY",)),
    "gemini_200_promptfeedback_prohibited_content.json": Case(
        "ContentBlocked", **BLOCKED, cost=0.025118, says=("prompt blocked: PROHIBITED_CONTENT",)),
    "gemini_200_promptfeedback_prohibited_with_details.json": Case(
        "ContentBlocked", **BLOCKED, cost=0.008876, says=("PROHIBITED_CONTENT",)),
    "gemini_200_sse_promptfeedback_prohibited_content.json": Case(
        "ContentBlocked", **BLOCKED, cost=0.000026, says=("PROHIBITED_CONTENT",)),
    "vertex_200_finish_model_armor_no_content.json": Case(
        "ContentBlocked", **BLOCKED, cost=0.000434, says=("MODEL_ARMOR", "Responsible AI Safety settings")),
    "vertex_200_promptfeedback_model_armor.json": Case(
        "ContentBlocked", **BLOCKED, says=("MODEL_ARMOR", "Prompt Injection and Jailbreak")),
    "modelled_gemini_200_finish_image_safety.json": Case(
        "ContentBlocked", **BLOCKED, cost=0.0031, says=("IMAGE_SAFETY", "Prohibited Use policy")),
    "modelled_vertex_200_finish_image_prohibited_content.json": Case(
        "ContentBlocked", **BLOCKED, cost=0.005118, says=("IMAGE_PROHIBITED_CONTENT", "sensitive words")),
    "modelled_gemini_200_finish_prohibited_content_candidate.json": Case(
        "ContentBlocked", **BLOCKED, cost=0.000088, says=("image blocked: PROHIBITED_CONTENT",)),
    "modelled_gemini_200_promptfeedback_other.json": Case(
        "ContentBlocked", **BLOCKED, cost=0.000042, says=("prompt blocked: OTHER",)),
    # ---- no image: retried a little, each answer billed for its tokens
    "gemini25flashimage_200_text_only_no_image.json": Case(
        "NoImageReturned", retry=True, cost=0.000125, model=FLASH25, says=("text only", "axolotl")),
    "gemini_200_text_thought_true_part.json": Case(
        "NoImageReturned", retry=True, cost=0.000262, says=("only thought parts",)),
    "modelled_gemini_200_finish_image_other.json": Case(
        "NoImageReturned", retry=True, cost=0.003862, says=("IMAGE_OTHER", "could not generate the image")),
    "modelled_gemini_200_finish_image_recitation.json": Case(
        "NoImageReturned", retry=True, cost=0.00203, says=("IMAGE_RECITATION",)),
    "modelled_gemini_200_finish_no_image_parts_null.json": Case(
        "NoImageReturned", retry=True, cost=0.000009, model=FLASH25, says=("NO_IMAGE",)),
    # stream recordings (a JSON list of chunks): not a generateContent answer; retried, $0
    "gemini_200_stream_image_mldev_sse_chunks.json": Case("BadResponse", retry=True, says=("JSON list",)),
    "vertex_200_stream_image_sse_chunks.json": Case("BadResponse", retry=True, says=("JSON list",)),
    # ---- Gemini / Vertex errors
    "gemini_400_api_key_invalid.json": Case("AuthError", says=("API key not valid",)),
    "vertex_401_unauthenticated_credentials_missing.json": Case("AuthError", says=("UNAUTHENTICATED", "API keys are not supported")),
    "modelled_vertex_403_permission_denied.json": Case("AuthError", says=("PERMISSION_DENIED", "aiplatform.endpoints.predict")),
    "vertex_400_invalid_argument_url_roboted.json": Case("InvalidRequest", says=("URL_ROBOTED",)),
    "gemini_404_image_model_not_found.json": Case("ModelNotFound", says=("NOT_FOUND", "is not found")),
    "gemini_404_model_not_found.json": Case("ModelNotFound", says=("NOT_FOUND",)),
    "gemini_404_model_not_found_debuginfo.json": Case("ModelNotFound", says=("custom-gemini-2.0-flash",)),
    "gemini_429_per_minute_quotafailure_retryinfo.json": Case(
        "RateLimited", retry=True, delay=26.0, says=("PerModelPerMinute", "limit 250000", "retry in 26.0s")),
    "gemini_429_no_details_quota_message.json": Case("RateLimited", retry=True, says=("exceeded your current quota",)),
    "gemini_429_no_details_resource_exhausted.json": Case("RateLimited", retry=True, says=("Resource has been exhausted",)),
    "vertex_429_list_wrapped.json": Case("RateLimited", retry=True, says=("RESOURCE_EXHAUSTED", "Resource exhausted")),
    # per day: deferred until midnight Pacific, never "retry in 22s"
    "gemini_429_per_day.json": Case("QuotaExhausted", **DEFERRED, says=("PerDay", "limit 250", "resets at")),
    "gemini_429_limit0_several_violations.json": Case("QuotaExhausted", **DEFERRED, says=("PerDay", "limit 0")),
    "modelled_vertex_429_per_day_message_only.json": Case(
        "QuotaExhausted", **DEFERRED, says=("requests per day", "resets at")),
    "modelled_vertex_429_errorinfo_quota_limit_value_0.json": Case(
        "QuotaExhausted", **DEFERRED, says=("limit 0", "no quota for this model")),
    # capacity is an overload (no adaptive cut), with RetryInfo when given
    "gemini_429_model_capacity_exhausted_list_wrapped.json": Case("Overloaded", retry=True, says=("No capacity",)),
    "gemini_503_model_capacity_exhausted_image.json": Case("Overloaded", retry=True, says=("No capacity",)),
    "gemini_503_model_capacity_exhausted_retryinfo.json": Case("Overloaded", retry=True, delay=40.0, says=("No capacity",)),
    "gemini_503_overloaded.json": Case("Overloaded", retry=True, says=("overloaded",)),
    "gemini_500_internal.json": Case("ServerError", retry=True, says=("INTERNAL",)),
    # ---- OpenAI-compatible route
    # usage without output_tokens_details: 50 output tokens are not trusted to be the image's
    # price; the image at list price ($0.134) + 50 prompt tokens
    "modelled_openai_200_b64_json.json": ok(0.1341, kind="openai"),
    "modelled_openai_200_url.json": ok(0.134, kind="openai"),  # no usage: list price
    "openai_400_moderation_blocked_output_stage.json": oa("ContentBlocked", **BLOCKED, says=("safety_violations=[sexual]",)),
    "relay_400_moderation_blocked_shell_api_error.json": oa("ContentBlocked", **BLOCKED, says=("rejected by the safety system",)),
    "openai_400_content_policy_violation_dalle.json": oa("ContentBlocked", **BLOCKED, says=("safety system",)),
    "azure_400_content_policy_violation_dalle3.json": oa("ContentBlocked", **BLOCKED, says=("safety system",)),
    "openai_400_dalle2_safety_system_legacy.json": oa("ContentBlocked", **BLOCKED, says=("safety system",)),
    "modelled_relay_400_relayed_image_safety.json": oa("ContentBlocked", **BLOCKED, says=("[IMAGE_SAFETY]",)),
    "openai_400_unknown_parameter_response_format.json": oa("InvalidRequest", says=("response_format",)),
    "openai_429_insufficient_quota.json": oa("QuotaExhausted", **DEFERRED, says=("exceeded your current quota",)),
    "modelled_openai_429_rate_limit_try_again.json": oa("RateLimited", retry=True, delay=6.0, says=("Please try again in 6s",)),
    "openrouter_429_provider_returned_error.json": oa(
        "RateLimited", retry=True, says=("Provider returned error: google/gemini-2.0-flash-exp:free is temporarily",)),
    "modelled_openrouter_429_raw_google_per_day.json": oa(
        "QuotaExhausted", **DEFERRED, says=("PerDay", "limit 250", "resets at")),
    "modelled_relay_502_json_without_envelope.json": oa("ServerError", retry=True, says=("upstream request failed",)),
}

# Variants of one payload under other headers (the file name + "#" + label).
VARIANTS: dict[str, Case] = {
    "modelled_openai_429_rate_limit_try_again.json#retry-after": oa(
        "RateLimited", retry=True, delay=20.0, headers={"retry-after": "20"}),
}


def _status_of(name: str) -> int:
    return int(re.search(r"_(\d{3})_", name).group(1))  # type: ignore[union-attr]


def _all_cases() -> list[Case]:
    cases = [Case(**{**c.__dict__, "file": name}) for name, c in CASES.items()]
    cases += [Case(**{**c.__dict__, "file": key.split("#")[0]}) for key, c in VARIANTS.items()]
    return cases


@pytest.fixture(scope="module")
def server():
    with WireServer() as srv:
        yield srv


def test_every_payload_of_the_corpus_has_a_case():
    on_disk = {p.name for p in WIRE.glob("*.json")}
    assert on_disk == set(CASES), f"missing: {sorted(on_disk - set(CASES))}, stale: {sorted(set(CASES) - on_disk)}"


def test_every_payload_has_its_provenance():
    provenance = (WIRE / "PROVENANCE.md").read_text()
    missing = [name for name in CASES if f"`{name}`" not in provenance]
    assert not missing


async def _send(server: WireServer, case: Case):
    settings = ProviderSettings(
        kind=case.kind, base_url=server.base_url, api_key=Secret("test-key"),  # type: ignore[arg-type]
        auth_style="header" if case.kind == "gemini" else "bearer", model=case.model, verify_size=False,
    )
    provider = make_provider(settings)
    server.reply = Reply(_status_of(case.file), (WIRE / case.file).read_bytes(), case.headers)
    try:
        return await provider.generate(ImageRequest(prompt="a mug on white", model=case.model))
    except ProviderError as exc:
        return exc
    finally:
        await provider.aclose()


@pytest.mark.parametrize("case", _all_cases(), ids=lambda c: c.file + ("#h" if c.headers else ""))
def test_payload_through_the_real_client(server, case: Case):
    outcome = asyncio.run(_send(server, case))
    if case.cls == "ok":
        assert not isinstance(outcome, ProviderError), outcome
        assert outcome.cost_usd == pytest.approx(case.cost, abs=1e-6)
        assert outcome.data.startswith(b"\x89PNG")
        return
    assert isinstance(outcome, ProviderError), outcome
    assert type(outcome).__name__ == case.cls, outcome.message
    assert error_status(outcome) == case.status
    assert is_retryable(outcome) == case.retry
    assert getattr(outcome, "retry_after", None) == case.delay
    assert outcome.cost_usd == pytest.approx(case.cost, abs=1e-6)
    for text in case.says:
        assert text in outcome.message, outcome.message
    assert "test-key" not in outcome.message
    if isinstance(outcome, QuotaExhausted):
        assert "retry in" not in outcome.message.lower()  # waits for the reset, says so
