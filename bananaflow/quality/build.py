"""One judge for the run's provider route: what the gate calls to get a ``Judge``.

The judge goes through the same door as the images (AI Studio, Vertex AI or an
OpenAI-compatible relay), with the same credentials, but its own model (``--qa-model``, default
``[defaults] judge_model`` in ``data/models.toml``) and so its own quota scope and prices.
"""
from __future__ import annotations

import httpx

from bananaflow.providers.settings import ProviderSettings
from bananaflow.quality.gemini_judge import GeminiJudge, VertexJudge
from bananaflow.quality.judge_api import JudgeAnswer, JudgeInput, ProductFacts
from bananaflow.quality.openai_judge import OpenAIChatJudge, preflight_relay, tiny_png
from bananaflow.quality.verdict_schema import MIN_CONFIDENCE

__all__ = ["AnyJudge", "build_judge", "preflight_judge", "probe_judge"]

AnyJudge = GeminiJudge | VertexJudge | OpenAIChatJudge


def build_judge(settings: ProviderSettings, model: str | None = None, client: httpx.AsyncClient | None = None,
                *, min_confidence: float = MIN_CONFIDENCE) -> AnyJudge:
    """The judge for ``settings.kind``; ``model`` None is the default judge model. An unknown
    model is a ``ConfigurationError`` here, before any call. Pass ``client`` to share the run's
    connection pool; a judge closes only a client it made (``aclose``)."""
    if settings.kind == "vertex":
        return VertexJudge(settings, model, client, min_confidence=min_confidence)
    if settings.kind == "gemini":
        return GeminiJudge(settings, model, client, min_confidence=min_confidence)
    return OpenAIChatJudge(settings, model, client, min_confidence=min_confidence)


async def preflight_judge(settings: ProviderSettings, model: str | None = None,
                          client: httpx.AsyncClient | None = None) -> None:
    """At run start: a ``ConfigurationError`` (one line naming ``--qa-model`` and ``--qa off``)
    when the route cannot judge. Google's routes serve every judge model in the table, so only
    a relay is probed (``openai_judge.preflight_relay``); an unknown model fails on every route."""
    if settings.kind == "openai":
        await preflight_relay(settings, model, client)
    else:
        build_judge(settings, model, client)  # validates the model id; makes no call


async def probe_judge(settings: ProviderSettings, model: str | None = None,
                      client: httpx.AsyncClient | None = None) -> JudgeAnswer:
    """One tiny real judge call (a 16 px white square, no reference): ``bananaflow doctor``'s
    check that the judge model answers a usable verdict. Costs about $0.001 on a Flash model."""
    judge = build_judge(settings, model, client)
    try:
        request = JudgeInput(tiny_png(), "image/png", ProductFacts(sku="doctor-probe", title="a plain white square"),
                             asked="a plain white square on a white background")
        return await judge.judge(request)
    finally:
        await judge.aclose()
