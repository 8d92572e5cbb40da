"""The native route: ``POST /{v1,v1beta}/models/{model}:generateContent``.

Both API versions are served because the official SDK defaults to ``v1`` while the
reference document (and most hand-written clients) use ``v1beta``.
"""
from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bananaflow.testing.simulator.calls import ImageCall
from bananaflow.testing.simulator.engine import SimulatorEngine
from bananaflow.testing.simulator.gemini_render import GeminiRenderer
from bananaflow.testing.simulator.gemini_wire import lookup_model, parse_generate_content_body
from bananaflow.testing.simulator.judge_render import gemini_judge_answer
from bananaflow.testing.simulator.judge_wire import JudgeCall, is_judge_body, judge_model, parse_gemini_judge

ROUTE_NAME = "generateContent"
JUDGE_ROUTE_NAME = "judge.generateContent"
API_VERSIONS = ("v1beta", "v1")


def _parser(model_id: str, api_version: str) -> Callable[[bytes], ImageCall]:
    def parse(body: bytes) -> ImageCall:
        spec = lookup_model(model_id, api_version)  # an unknown model is a 404 whatever the body
        return parse_generate_content_body(spec, body)

    return parse


def _judge_parser(model_id: str, api_version: str) -> Callable[[bytes], JudgeCall]:
    def parse(body: bytes) -> JudgeCall:
        spec = judge_model(model_id, f"models/{model_id} is not found for API version {api_version}, or is not "
                                     "supported for generateContent. Call ListModels to see the list of available "
                                     "models and their supported methods.")
        return parse_gemini_judge(spec, body)

    return parse


async def generate_content(request: Request) -> Response:
    """Answer one ``generateContent`` call through the shared engine (a body asking for JSON
    under a response schema goes to the judge desk)."""
    engine: SimulatorEngine = request.app.state.engine
    model_id = request.path_params["model"]
    api_version = request.url.path.split("/")[1]
    if is_judge_body(await request.body()):
        return await engine.judge.handle(request, engine.config, JUDGE_ROUTE_NAME, GeminiRenderer(engine.config),
                                         _judge_parser(model_id, api_version), gemini_judge_answer, model_hint=model_id)
    return await engine.handle(
        request, ROUTE_NAME, GeminiRenderer(engine.config), _parser(model_id, api_version), model_hint=model_id
    )


routes = [
    Route(f"/{version}/models/{{model}}:generateContent", generate_content, methods=["POST"])
    for version in API_VERSIONS
]
