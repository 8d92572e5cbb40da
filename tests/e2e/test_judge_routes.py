"""The vision judge against the real simulator HTTP server, on all three routes.

AI Studio: scripted defects are drawn into generated images, the image is converted as a preset
would (resized, JPEG), the judge finds the defect in the pixels and names it, the corrected
request (``quality.feedback``) makes a clean image for a ``once`` defect and not for an ``always``
one, and the judge saw the reference photo. Vertex AI (OAuth from a service-account key) and an
OpenAI-compatible relay (chat completions with a strict JSON schema, its preflight refusals)
answer the same verdicts. Faults: 429/500 are the taxonomy's errors; invalid, truncated, cut or
schema-breaking JSON and a blocked judge are ``JudgeUnavailable`` with what they were billed; a
fenced answer is still read.
"""
from __future__ import annotations

import asyncio
import io

import imagehash
import pytest
from PIL import Image

from bananaflow.providers import ImageRequest, ProviderSettings, ReferenceImage, make_provider
from bananaflow.quality.build import build_judge
from bananaflow.quality.feedback import CORRECTIONS_MARKER, plan_regeneration
from bananaflow.quality.judge_api import JudgeInput, ProductFacts
from bananaflow.secrets import Secret
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer

pytestmark = pytest.mark.e2e

KEY = "FAKE-TEST-judge-key-0123456789abcdef"


def _settings(kind: str, base_url: str, **extra: object) -> ProviderSettings:
    auth = {"gemini": "header", "openai": "bearer", "vertex": "bearer"}[kind]
    return ProviderSettings(kind=kind, base_url=base_url, api_key=None if kind == "vertex" else Secret(KEY),
                            auth_style=auth, model="gemini-3-pro-image", **extra)  # type: ignore[arg-type]


def _as_published(data: bytes) -> bytes:
    """What an output preset does to the image before the judge sees it: 800 px JPEG."""
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").resize((800, 800), Image.Resampling.LANCZOS).save(out, "JPEG", quality=88)
    return out.getvalue()


def _reference_photo() -> bytes:
    image = Image.new("RGB", (320, 320), (250, 250, 250))
    for x in range(60, 260):
        for y in range(40, 290):
            image.putpixel((x, y), (30, 90 + y // 4, 160))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def _request(image: bytes, sku: str, asked: str, reference: bytes | None = None) -> JudgeInput:
    refs = (ReferenceImage(reference, "image/jpeg"),) if reference else ()
    return JudgeInput(image, "image/jpeg", ProductFacts(sku=sku, title=f"Ceramic mug model {sku}", colour="blue",
                                                        label_text="MORNING BREW"), refs, asked=asked,
                      preset_rules="amazon-main: pure white background, product fills 85%")


async def _make(settings: ProviderSettings, prompt: str) -> bytes:
    provider = make_provider(settings)
    try:
        image = await provider.generate(ImageRequest(prompt=prompt, model="gemini-3-pro-image"))
    finally:
        await provider.aclose()
    return _as_published(image.data)


def test_ai_studio_judge_finds_scripted_defects_and_corrections_fix_the_once_kind() -> None:
    config = SimulatorConfig(latency_s=(0.0, 0.01), defects={"model D1": "once", "model D2": "always:extra_object"})
    reference = _reference_photo()
    with SimulatorServer(config) as sim:
        settings = _settings("gemini", sim.base_url)

        async def scenario() -> dict[str, object]:
            judge = build_judge(settings)
            prompts = {sku: f"A studio photo of Ceramic mug model {sku} on a pure white background." for sku in ("D1", "D2", "D3")}
            first = {sku: (await judge.judge(_request(await _make(settings, p), sku, p, reference))).verdict
                     for sku, p in prompts.items()}
            again = {}
            for sku in ("D1", "D2"):
                plan = plan_regeneration(prompts[sku], [first[sku]])
                again[sku] = (plan, (await judge.judge(_request(await _make(settings, plan.prompt), sku, plan.prompt,
                                                                 reference))).verdict)
            await judge.aclose()
            return {"first": first, "again": again}

        result = asyncio.run(scenario())
        first, again = result["first"], result["again"]
        assert first["D3"].passed and not first["D1"].passed and not first["D2"].passed
        assert [c.name for c in first["D1"].checks if not c.passed] == ["text_and_labels"]
        assert "garbled" in first["D1"].reasons[0]
        assert [c.name for c in first["D2"].checks if not c.passed] == ["single_product"]
        assert "hand" in first["D2"].reasons[0]
        plan_d1, verdict_d1 = again["D1"]
        assert CORRECTIONS_MARKER in plan_d1.prompt and "garbled" in plan_d1.prompt and plan_d1.mode == "edit"
        assert verdict_d1.passed  # "once": the corrected request gets a clean image
        plan_d2, verdict_d2 = again["D2"]
        assert plan_d2.mode == "fresh" and not verdict_d2.passed  # "always": still a hand

        log = sim.judge_log()
        assert len(log) == 5 and {r["route"] for r in log} == {"judge.generateContent"}
        assert all(r["images"] == 2 for r in log)
        ref_hash = imagehash.phash(Image.open(io.BytesIO(reference)).convert("RGB"))
        assert all(imagehash.hex_to_hash(r["image_phashes"][1]) - ref_hash <= 4 for r in log)  # saw the reference
        assert [r["passed"] for r in log] == [False, False, True, True, False]
        assert sim.stats()["by_outcome"] == {"ok": 5}  # image counters stay about images
        assert sim.judge_stats()["by_outcome"] == {"ok": 5}
