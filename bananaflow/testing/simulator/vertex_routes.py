"""Vertex AI's routes: ``generateContent`` under a project and location, and model metadata.

``POST /{v1,v1beta1}/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent``
takes AI Studio's body and answers in AI Studio's shapes (same engine: quotas, script,
latency), but is reached with an OAuth bearer token issued by ``oauth.TokenIssuer``, and
fails as Vertex does: 401 UNAUTHENTICATED without a valid token, 403 PERMISSION_DENIED for
a project in ``vertex_denied_projects``, 429 RESOURCE_EXHAUSTED from Dynamic Shared Quota
(no quota id, no retry delay) and, with ``vertex_list_errors``, every error wrapped in a
list (``[{"error": {...}}]``) as some Vertex front ends send it. The google-genai SDK uses
``v1beta1`` by default and bananaflow ``v1``: both are served.

``GET`` on the model paths (``/v1/publishers/google/models/{model}`` and the
project-scoped one, and AI Studio's ``/{v1,v1beta}/models/{model}``) answers model metadata:
the free call ``bananaflow doctor`` uses to test a credential without generating an image.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bananaflow.providers.models import get_model
from bananaflow.quality.judge_models import get_judge_model, known_judge_models
from bananaflow.testing.simulator.auth import is_authorized
from bananaflow.testing.simulator.calls import ImageCall, WireError
from bananaflow.testing.simulator.config import SimulatorConfig
from bananaflow.testing.simulator.engine import SimulatorEngine
from bananaflow.testing.simulator.faults.quota import QuotaRejection
from bananaflow.testing.simulator.gemini_render import GeminiRenderer
from bananaflow.testing.simulator.gemini_wire import parse_generate_content_body
from bananaflow.testing.simulator.judge_render import gemini_judge_answer
from bananaflow.testing.simulator.judge_wire import JudgeCall, is_judge_body, judge_model, parse_gemini_judge
from bananaflow.testing.simulator.oauth import bearer_token

ROUTE_NAME = "vertex.generateContent"
JUDGE_ROUTE_NAME = "vertex.judge.generateContent"
VERTEX_VERSIONS = ("v1", "v1beta1")
_WORDS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
          429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
UNAUTHENTICATED_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
DSQ_MESSAGE = (
    "Resource exhausted. Please try again later. Please refer to "
    "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details."
)
_PATH = "/{version}/projects/{project}/locations/{location}/publishers/google/models/{model}"


def vertex_error(config: SimulatorConfig, code: int, message: str, details: list[dict[str, Any]] | None = None) -> Response:
    body: Any = {"error": {"code": code, "message": message, "status": _WORDS.get(code, "UNKNOWN"),
                           **({"details": details} if details else {})}}
    return JSONResponse([body] if config.vertex_list_errors else body, status_code=code)


def _permission_denied(config: SimulatorConfig, project: str, location: str, model: str) -> Response:
    resource = f"projects/{project}/locations/{location}/publishers/google/models/{model}"
    return vertex_error(config, 403, f"Permission 'aiplatform.endpoints.predict' denied on resource "
                        f"'//aiplatform.googleapis.com/{resource}' (or it may not exist).", [
                            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
                             "domain": "aiplatform.googleapis.com",
                             "metadata": {"permission": "aiplatform.endpoints.predict", "resource": resource}}])


class VertexRenderer(GeminiRenderer):
    """AI Studio's answers, Vertex's errors."""

    def wire_error(self, error: WireError) -> Response:
        return vertex_error(self._config, error.http_status, error.message)

    def bad_key(self) -> Response:
        return vertex_error(self._config, 401, UNAUTHENTICATED_MESSAGE, [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED",
             "domain": "googleapis.com", "metadata": {"service": "aiplatform.googleapis.com",
                                                      "method": "google.cloud.aiplatform.v1.PredictionService.GenerateContent"}}])

    def rejection(self, rejection: QuotaRejection) -> Response:
        return vertex_error(self._config, 429, DSQ_MESSAGE)

    def server_error(self, status: int) -> Response:
        words = {500: "Internal error encountered.", 503: "The service is currently unavailable."}
        return vertex_error(self._config, status, words[status])


def _authorize(engine: SimulatorEngine, renderer: VertexRenderer, project: str, location: str,
               model: str) -> Callable[[Request], Response | None]:
    def check(request: Request) -> Response | None:
        if not engine.oauth.valid(bearer_token(request)):
            return renderer.bad_key()
        if project in engine.config.vertex_denied_projects:
            return _permission_denied(engine.config, project, location, model)
        return None

    return check


def _parser(project: str, location: str, model_id: str) -> Callable[[bytes], ImageCall]:
    def parse(body: bytes) -> ImageCall:
        spec = _vertex_model(project, location, model_id)
        return parse_generate_content_body(spec, body)

    return parse


def _vertex_model(project: str, location: str, model_id: str) -> Any:
    try:
        return get_model(model_id)
    except Exception:
        raise WireError(404, f"Publisher Model `projects/{project}/locations/{location}/publishers/google/models/"
                             f"{model_id}` was not found or your project does not have access to it. Please ensure "
                             "you are using a valid model version.") from None


def _judge_parser(project: str, location: str, model_id: str) -> Callable[[bytes], JudgeCall]:
    def parse(body: bytes) -> JudgeCall:
        spec = judge_model(model_id, f"Publisher Model `projects/{project}/locations/{location}/publishers/google/"
                                     f"models/{model_id}` was not found or your project does not have access to it. "
                                     "Please ensure you are using a valid model version.")
        return parse_gemini_judge(spec, body)

    return parse


async def generate_content(request: Request) -> Response:
    engine: SimulatorEngine = request.app.state.engine
    p = request.path_params
    renderer = VertexRenderer(engine.config)
    if is_judge_body(await request.body()):
        return await engine.judge.handle(
            request, engine.config, JUDGE_ROUTE_NAME, renderer, _judge_parser(p["project"], p["location"], p["model"]),
            gemini_judge_answer, model_hint=p["model"],
            authorize=_authorize(engine, renderer, p["project"], p["location"], p["model"]),
        )
    return await engine.handle(
        request, ROUTE_NAME, renderer, _parser(p["project"], p["location"], p["model"]), model_hint=p["model"],
        authorize=_authorize(engine, renderer, p["project"], p["location"], p["model"]),
    )


async def vertex_model(request: Request) -> Response:
    """Publisher model metadata (needs a valid token, like every Vertex call)."""
    engine: SimulatorEngine = request.app.state.engine
    p = request.path_params
    project, location = p.get("project", "-"), p.get("location", "global")
    denied = _authorize(engine, VertexRenderer(engine.config), project, location, p["model"])(request)
    if denied is not None:
        return denied
    try:
        spec = _vertex_model(project, location, p["model"])
    except WireError as error:
        if p["model"] not in known_judge_models():  # judge models have metadata too
            return vertex_error(engine.config, 404, error.message)
        spec = get_judge_model(p["model"])
    return JSONResponse({"name": f"publishers/google/models/{spec.id}", "versionId": "001",
                         "openSourceCategory": "PROPRIETARY", "launchStage": "GA"})


async def count_tokens(request: Request) -> Response:
    """``countTokens``: free, but checked like ``generateContent`` (token, IAM, model id)."""
    engine: SimulatorEngine = request.app.state.engine
    p = request.path_params
    denied = _authorize(engine, VertexRenderer(engine.config), p["project"], p["location"], p["model"])(request)
    if denied is not None:
        return denied
    try:
        _vertex_model(p["project"], p["location"], p["model"])
        body = json.loads(await request.body() or b"{}")
    except WireError as error:
        return vertex_error(engine.config, 404, error.message)
    except ValueError:
        return vertex_error(engine.config, 400, "Invalid JSON payload received.")
    words = sum(len(str(part.get("text", "")).split()) for content in body.get("contents") or ()
                for part in content.get("parts") or () if isinstance(part, dict))
    return JSONResponse({"totalTokens": max(1, words), "totalBillableCharacters": 0})


async def studio_model(request: Request) -> Response:
    """AI Studio's ``models.get``: the key is checked, an unknown or retired id is a 404."""
    engine: SimulatorEngine = request.app.state.engine
    renderer = GeminiRenderer(engine.config)
    if not is_authorized(request, engine.config.api_key):
        return renderer.bad_key()
    model_id, version = request.path_params["model"], request.url.path.split("/")[1]
    try:
        spec = get_judge_model(model_id) if model_id in known_judge_models() else get_model(model_id)
    except Exception:
        return renderer.wire_error(WireError(404, f"models/{model_id} is not found for API version {version}, or is "
                                                  "not supported for generateContent. Call ListModels to see the list "
                                                  "of available models and their supported methods."))
    return JSONResponse({"name": f"models/{spec.id}", "version": "3.0", "displayName": spec.nickname,
                         "inputTokenLimit": 65536, "outputTokenLimit": 32768,
                         "supportedGenerationMethods": ["generateContent", "countTokens", "batchGenerateContent"]})


routes = [
    *(Route(_PATH.replace("{version}", v) + ":generateContent", generate_content, methods=["POST"])
      for v in VERTEX_VERSIONS),
    *(Route(_PATH.replace("{version}", v), vertex_model, methods=["GET"]) for v in VERTEX_VERSIONS),
    *(Route(_PATH.replace("{version}", v) + ":countTokens", count_tokens, methods=["POST"]) for v in VERTEX_VERSIONS),
    *(Route(f"/{v}/publishers/google/models/{{model}}", vertex_model, methods=["GET"]) for v in VERTEX_VERSIONS),
    *(Route(f"/{v}/models/{{model}}", studio_model, methods=["GET"]) for v in ("v1", "v1beta")),
]
