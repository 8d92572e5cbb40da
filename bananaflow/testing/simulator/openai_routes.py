"""The OpenAI-compatible routes: ``/v1/images/generations`` (relays) and
``/v1beta/openai/images/generations`` (Google's compatibility layer)."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bananaflow.testing.simulator.calls import ImageCall
from bananaflow.testing.simulator.engine import SimulatorEngine
from bananaflow.testing.simulator.openai_render import OpenAIRenderer
from bananaflow.testing.simulator.openai_wire import parse_images_request

ROUTE_NAME = "images.generations"
PATHS = ("/v1/images/generations", "/v1beta/openai/images/generations")


async def generate_images(request: Request) -> Response:
    """Answer one ``images/generations`` call through the shared engine."""
    engine: SimulatorEngine = request.app.state.engine
    config = engine.config
    renderer = OpenAIRenderer(engine.files, str(request.base_url), retry_after_header=config.openai_retry_after)

    def parse(body: bytes) -> ImageCall:
        parsed = parse_images_request(body, strict=config.openai_strict)
        renderer.response_format = parsed.response_format
        return parsed.call

    return await engine.handle(request, ROUTE_NAME, renderer, parse, bearer_only=True)


routes = [Route(path, generate_images, methods=["POST"]) for path in PATHS]
