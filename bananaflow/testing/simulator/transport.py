"""Failures below the API: a proxy's HTML 502, a body cut short, a dropped connection.

These are what a client meets between itself and Google (relays, load balancers), and
the ones most often handled wrongly, so they are served byte for byte as a client would
see them rather than described in JSON.
"""
from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from typing import Any

from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

ABORT_KEY = "bananaflow.testing.simulator.abort"
_BAD_GATEWAY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def bad_gateway_page() -> Response:
    """The HTML page a reverse proxy sends when the upstream failed."""
    return HTMLResponse(_BAD_GATEWAY_PAGE, status_code=502)


def truncated(response: Response) -> Response:
    """``response`` with its JSON body cut in half: a 200 whose body does not parse."""
    body = bytes(response.body)
    return Response(body[: len(body) // 2], status_code=200, media_type="application/json")


def _abort(transport: Any) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:  # linger 0: the close sends RST, as a crashed peer would
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class ExposeAbort:
    """ASGI wrapper that lets an endpoint drop its own connection.

    ASGI has no "reset the connection" message, but uvicorn's ``send`` is a method of the
    request cycle that owns the transport; this wrapper puts an abort callable for that
    transport into the scope, where ``DropConnection`` finds it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if scope["type"] == "http" and transport is not None:
            scope[ABORT_KEY] = lambda: _abort(transport)
        await self.app(scope, receive, send)


class DropConnection(Response):
    """A "response" that sends nothing and resets the TCP connection."""

    def __init__(self) -> None:
        super().__init__(status_code=599)  # never sent; recorded as no HTTP status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        abort: Callable[[], None] = scope[ABORT_KEY]
        abort()
        # Let the loop deliver connection_lost, so uvicorn knows there is no one to answer.
        for _ in range(3):
            await asyncio.sleep(0)
