"""The fast socket backend: one send per request, a cheap "did the server close it?", and
the same answers as httpx's own backend over a real HTTP server."""
from __future__ import annotations

import asyncio
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore
import httpx
import pytest

from bananaflow.providers._http import make_client
from bananaflow.providers.network_backend import FastSocketBackend, _CorkedStream, use_fast_sockets


class _Inner(httpcore.AsyncNetworkStream):
    """Records what reaches the socket layer."""

    def __init__(self, sock: socket.socket | None = None, alpn: str | None = None) -> None:
        self.writes: list[bytes] = []
        self.sock = sock
        self.alpn = alpn
        self.closed = False

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return b"HTTP/1.1 200 OK\r\n"

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.writes.append(buffer)

    async def aclose(self) -> None:
        self.closed = True

    def get_extra_info(self, info: str) -> Any:
        if info == "socket":
            return self.sock
        if info == "ssl_object" and self.alpn:
            return type("SSL", (), {"selected_alpn_protocol": lambda _self: self.alpn})()
        return None


def test_a_request_head_and_body_leave_as_one_write_when_the_response_is_read() -> None:
    inner = _Inner()
    stream = _CorkedStream(inner)

    async def exchange() -> bytes:
        await stream.write(b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n")
        await stream.write(b"{}")
        assert inner.writes == []  # nothing sent before the response is wanted
        return await stream.read(1024)

    assert asyncio.run(exchange()).startswith(b"HTTP/1.1 200")
    assert inner.writes == [b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"]


def test_http2_writes_are_not_held() -> None:
    inner = _Inner(alpn="h2")
    asyncio.run(_CorkedStream(inner).write(b"frame"))
    assert inner.writes == [b"frame"]


def test_a_closed_stream_sends_nothing_it_held() -> None:
    inner = _Inner()
    stream = _CorkedStream(inner)

    async def close_early() -> None:
        await stream.write(b"half a request")
        await stream.aclose()

    asyncio.run(close_early())
    assert inner.writes == [] and inner.closed


def test_is_readable_polls_the_socket_it_was_given() -> None:
    ours, server = socket.socketpair()
    try:
        stream = _CorkedStream(_Inner(sock=ours))
        assert stream.get_extra_info("is_readable") is False  # idle and open
        server.close()  # the server hung up: the pool must drop this connection
        assert stream.get_extra_info("is_readable") is True
    finally:
        ours.close()
    assert _CorkedStream(_Inner(sock=None)).get_extra_info("is_readable") is True  # no socket: treat as closed


def test_every_pool_of_a_built_client_gets_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    client, owned = make_client(None, 5.0)
    assert owned and isinstance(client._transport._pool._network_backend, FastSocketBackend)  # noqa: SLF001
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    proxied = httpx.AsyncClient(trust_env=True)
    assert use_fast_sockets(proxied) == 1 + len(proxied._mounts)  # noqa: SLF001 - direct + the proxy's pool
    mock = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(204)))
    assert use_fast_sockets(mock) == 0  # a transport httpx did not build is left alone
    asyncio.run(client.aclose())


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: connections are reused

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        reply = body[::-1] + f"|{self.client_address[1]}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:  # the test's output stays readable
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 refuses a burst of connections before any backend sees them


def test_many_requests_over_reused_connections_match_what_was_sent() -> None:
    server = _Server(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"

    async def run() -> list[tuple[bytes, bytes]]:
        client, _ = make_client(None, 10.0)
        try:
            gate = asyncio.Semaphore(16)

            async def one(i: int) -> tuple[bytes, bytes]:
                body = f"request-{i}-".encode() * (1 + i % 50)
                async with gate:
                    response = await client.post(url, content=body)
                return body, response.content
            return await asyncio.gather(*(one(i) for i in range(200)))
        finally:
            await client.aclose()

    try:
        answers = asyncio.run(run())
    finally:
        server.shutdown()
        server.server_close()
    assert all(reply.split(b"|")[0] == body[::-1] for body, reply in answers)
    ports = {reply.split(b"|")[1] for _, reply in answers}
    assert len(ports) <= 32  # connections were kept alive and reused
