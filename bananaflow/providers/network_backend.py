"""httpcore's own network backend, with two costs of every request taken out.

A run sends tens of thousands of small requests from one process, and the profile of a
whole run showed the socket layer, not the model's answers, as the largest CPU item:

* Before every request and after every response, httpcore's pool asks each idle
  connection whether the server closed it (``get_extra_info("is_readable")``). anyio
  answers by building the stream's whole attribute table, which calls ``getpeername`` and
  ``getsockname`` each time: a dozen system calls per request at a cap of 8, growing with
  the cap. Here the raw socket is looked up once per connection and asked with one
  ``poll``.
* HTTP/1.1 writes a request as its head and then its body: two ``send`` calls, two wake-ups
  of the server. Here writes are held until the connection next reads (the response), then
  sent as one buffer. Nothing is held across a read, so a response can never wait on an
  unsent request. HTTP/2 streams share a connection and read while others write, so
  writes on an HTTP/2 connection go out at once.

It plugs in through httpcore's ``network_backend`` (``use_fast_sockets``); everything else,
TLS and proxies included, is httpcore's and anyio's own code.
"""
from __future__ import annotations

import select
import socket
import ssl
from typing import Any

import httpcore
import httpx
from httpcore import AsyncNetworkBackend, AsyncNetworkStream
from httpcore._backends.auto import AutoBackend

__all__ = ["FastSocketBackend", "use_fast_sockets"]


def _readable(sock: socket.socket | None) -> bool:
    """httpcore's rule: a socket without a descriptor reads as closed (readable)."""
    fd = -1 if sock is None else sock.fileno()
    if fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class _CorkedStream(AsyncNetworkStream):
    """A stream whose writes wait for its next read (or close), then leave as one send."""

    def __init__(self, inner: AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")
        ssl_object = inner.get_extra_info("ssl_object")
        self._cork = not (ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2")
        self._pending: list[bytes] = []

    async def _flush(self, timeout: float | None) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            await self._inner.write(data, timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await self._flush(timeout)
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if not self._cork:
            await self._inner.write(buffer, timeout)
            return
        self._pending.append(buffer)

    async def aclose(self) -> None:
        self._pending.clear()  # a request never answered is not sent half-way after a close
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> AsyncNetworkStream:
        await self._flush(timeout)  # a proxy's CONNECT goes out before the handshake
        return _CorkedStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return _readable(self._socket)
        return self._inner.get_extra_info(info)


class FastSocketBackend(AsyncNetworkBackend):
    """httpcore's default backend (anyio), with its streams wrapped in ``_CorkedStream``."""

    def __init__(self, inner: AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or AutoBackend()

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: Any = None,
    ) -> AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _CorkedStream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> AsyncNetworkStream:
        return _CorkedStream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def use_fast_sockets(client: httpx.AsyncClient) -> int:
    """Give every connection pool of ``client`` (its transport and its proxy mounts) the
    fast backend; returns how many pools now use it. A pool httpx did not build (a test's
    ``MockTransport``) is left alone. httpx has no public way to pass a network backend, so
    this sets the pool's; ``tests/unit/providers/test_network_backend.py`` fails if a new
    httpx or httpcore moves it."""
    transports = [client._transport, *client._mounts.values()]  # noqa: SLF001 - see the docstring
    changed = 0
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        if isinstance(pool, httpcore.AsyncConnectionPool) and hasattr(pool, "_network_backend"):
            pool._network_backend = FastSocketBackend()  # noqa: SLF001
            changed += 1
    return changed
