"""The OpenAI-compatible relay's judge door: ``/v1/chat/completions`` and ``/v1/models``.

Chat completions are served for the judge models (``[judge_models]`` in models.toml) through the
judge desk; ``/models`` lists what the relay serves (image and judge models), which is what
``quality.openai_judge.preflight_relay`` reads for free. Knobs make the relay one that cannot
judge: ``openai_chat=False`` (no chat route: 404) and ``openai_json_schema=False`` (a
``json_schema`` response format is a 400, as on relays whose upstream lacks structured output).
"""
from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bananaflow.providers.models import known_models
from bananaflow.quality.judge_models import known_judge_models
from bananaflow.testing.simulator.auth import is_authorized
from bananaflow.testing.simulator.engine import SimulatorEngine
from bananaflow.testing.simulator.judge_render import chat_judge_answer
from bananaflow.testing.simulator.judge_wire import JudgeCall, parse_chat_judge
from bananaflow.testing.simulator.openai_render import OpenAIRenderer, openai_error

ROUTE_NAME = "chat.completions"
CHAT_PATHS = ("/v1/chat/completions", "/v1beta/openai/chat/completions")
MODELS_PATHS = ("/v1/models", "/v1beta/openai/models")


async def chat_completions(request: Request) -> Response:
    engine: SimulatorEngine = request.app.state.engine
    config = engine.config
    if not config.openai_chat:
        return openai_error(404, f"Invalid URL (POST {request.url.path})", "invalid_request_error")
    renderer = OpenAIRenderer(engine.files, str(request.base_url), retry_after_header=config.openai_retry_after)

    def parse(body: bytes) -> JudgeCall:
        return parse_chat_judge(body, json_schema_supported=config.openai_json_schema)

    return await engine.judge.handle(request, config, ROUTE_NAME, renderer, parse, chat_judge_answer, bearer_only=True)


async def list_models(request: Request) -> Response:
    engine: SimulatorEngine = request.app.state.engine
    if not is_authorized(request, engine.config.api_key, bearer_only=True):
        return OpenAIRenderer(engine.files, str(request.base_url)).bad_key()
    served = [*known_models(), *(known_judge_models() if engine.config.openai_chat else [])]
    created = int(time.time())
    return JSONResponse({"object": "list", "data": [
        {"id": model, "object": "model", "created": created, "owned_by": "google"} for model in served]})


routes = [
    *(Route(path, chat_completions, methods=["POST"]) for path in CHAT_PATHS),
    *(Route(path, list_models, methods=["GET"]) for path in MODELS_PATHS),
]
