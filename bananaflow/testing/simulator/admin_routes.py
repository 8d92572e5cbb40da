"""The simulator's own endpoints under ``/_simulator``: stats and reset for tests that
drive a simulator in another process, and the downloads behind OpenAI-style URLs."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bananaflow.testing.simulator.engine import SimulatorEngine


def _engine(request: Request) -> SimulatorEngine:
    return request.app.state.engine


async def stats(request: Request) -> Response:
    """Counters plus the request log, as ``SimulatorServer.stats`` / ``request_log``; the judge's
    calls under ``judge`` (``SimulatorServer.judge_stats`` / ``judge_log``)."""
    engine = _engine(request)
    return JSONResponse({**engine.stats.snapshot(), "batch": engine.batches.counters(),
                         "oauth": engine.oauth.counters(),
                         "judge": {**engine.judge.stats.snapshot(), "log": engine.judge.stats.log()},
                         "request_log": engine.stats.log()})


async def reset(request: Request) -> Response:
    _engine(request).reset()
    return JSONResponse({"reset": True})


async def download(request: Request) -> Response:
    """An image handed out by URL; 404 once it has expired from the store."""
    stored = _engine(request).files.get(request.path_params["name"])
    if stored is None:
        return JSONResponse({"error": {"message": "file not found or expired"}}, status_code=404)
    data, mime_type = stored
    return Response(data, media_type=mime_type)


routes = [
    Route("/_simulator/stats", stats, methods=["GET"]),
    Route("/_simulator/reset", reset, methods=["POST"]),
    Route("/_simulator/files/{name}", download, methods=["GET"]),
]
