"""The ASGI application: every route, on one shared engine."""
from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from bananaflow.testing.simulator import (
    admin_routes,
    batch_routes,
    chat_routes,
    gemini_routes,
    oauth,
    openai_routes,
    vertex_routes,
)
from bananaflow.testing.simulator.engine import SimulatorEngine
from bananaflow.testing.simulator.gemini_render import google_error
from bananaflow.testing.simulator.transport import ExposeAbort


async def _not_found(request: Request, exc: Exception) -> Response:
    """Unknown paths answer in Google's envelope, as the real front end does."""
    return google_error(404, f"The requested URL {request.url.path} was not found on this server.")


def build_app(engine: SimulatorEngine) -> ASGIApp:
    """The simulator as an ASGI app (wrapped so scripted resets can drop connections)."""
    app = Starlette(
        routes=[*gemini_routes.routes, *batch_routes.routes, *openai_routes.routes, *admin_routes.routes,
                *vertex_routes.routes, *oauth.routes, *chat_routes.routes],
        exception_handlers={404: _not_found},
    )
    app.state.engine = engine
    return ExposeAbort(app)
