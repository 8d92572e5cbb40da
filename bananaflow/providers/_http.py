"""The one place providers touch the network, so key hygiene is written once.

httpx reports the full request URL in its exception texts and in its INFO log line
("HTTP Request: POST https://...?key=..."). Two defences: transport exceptions are
replaced (not chained) by classified errors that carry no httpx text, and the httpx and
httpcore loggers get bananaflow's redacting filter before the first request is sent.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
from typing import Any

import httpx

from bananaflow.errors import BadResponse, ProviderError
from bananaflow.providers.classify import classify_response, classify_transport_error
from bananaflow.providers.imaging import check_pixels, inspect_image
from bananaflow.providers.network_backend import use_fast_sockets
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import excerpt, install_log_redaction

_HTTP_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
)


#: Connections one provider client may open at once (far above any in-flight cap in use).
#: Threads that only decode answers: an answer is checked at once, not after the S3 calls a
#: run queues on its I/O threads (it is paid for and held in memory until it is on disk).
_DECODE_THREADS = concurrent.futures.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                                                        thread_name_prefix="bananaflow-decode")
POOL_CONNECTIONS = 1024


def make_client(client: httpx.AsyncClient | None, timeout_s: float) -> tuple[httpx.AsyncClient, bool]:
    """Use the caller's client, or build one; the flag says whether we own (and close) it.

    The built client carries no credentials and does not follow redirects: credentials go
    on each request explicitly, so a redirect or a download never carries them elsewhere.
    """
    install_log_redaction(_HTTP_LOGGERS)
    if client is not None:
        return client, False
    # the rate controller bounds requests in flight, not the pool: httpx's default of 100
    # connections would silently cap a run at 100 in flight (one client serves the whole run)
    limits = httpx.Limits(max_connections=POOL_CONNECTIONS, max_keepalive_connections=POOL_CONNECTIONS)
    built = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), follow_redirects=False, limits=limits)
    use_fast_sockets(built)
    return built, True


async def send(
    client: httpx.AsyncClient, method: str, url: str, *, model: str | None = None, **kwargs: Any
) -> httpx.Response:
    """Send one request; return a 2xx response or raise a classified ``ProviderError``.

    The error is raised outside the ``except`` block on purpose: a chained httpx exception
    would drag the keyed URL into tracebacks via ``__context__``.
    """
    error: ProviderError | None = None
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        error = classify_transport_error(exc, model=model)
    except OSError as exc:  # a custom transport may leak raw socket errors
        error = classify_transport_error(exc, model=model)
    if error is not None:
        raise error
    if not response.is_success:
        raise classify_response(response, model=model)
    return response


async def post_json(
    client: httpx.AsyncClient, settings: ProviderSettings, url: str, body: dict[str, Any], *, model: str,
    auth_headers: dict[str, str] | None = None,
) -> tuple[httpx.Response, dict[str, Any]]:
    """POST ``body`` with the settings' one credential (or ``auth_headers``, e.g. Vertex AI's
    OAuth bearer token); the 2xx response and its JSON."""
    headers, params = credentials(settings)
    headers.update(auth_headers or {})
    response = await send(
        client, "POST", url, model=model, json=body, headers=headers, params=params, timeout=settings.timeout_s
    )
    return response, read_json(response, model=model)


def read_json(response: httpx.Response, *, model: str | None = None) -> dict[str, Any]:
    """Parse a 2xx body that must be a JSON object; anything else is a ``BadResponse``."""
    try:
        payload = json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        kind = "truncated or invalid JSON" if response.content.lstrip()[:1] in (b"{", b"[") else "not JSON"
        preview = excerpt(response.content, 60)  # redacted before the cut
        raise BadResponse(
            f"HTTP {response.status_code} body is {kind} ({type(exc).__name__}; starts {preview!r})",
            http_status=response.status_code,
            model=model,
        ) from None
    if not isinstance(payload, dict):
        raise BadResponse(
            f"HTTP {response.status_code} body is JSON {type(payload).__name__}, not an object",
            http_status=response.status_code,
            model=model,
        )
    return payload


def int_field(mapping: Any, *names: str) -> int:
    """An integer counter that may arrive as a string (proto int64 in JSON), else 0."""
    if not isinstance(mapping, dict):
        return 0
    for name in names:
        value = mapping.get(name)
        if value is None:
            continue
        try:
            return int(value)
        except (TypeError, ValueError):
            return 0
    return 0


async def download(client: httpx.AsyncClient, url: str, *, model: str | None = None) -> httpx.Response:
    """Fetch a short-lived image URL from a relay. No credential is attached (the URL
    is usually a foreign storage host), so following its redirects is safe. Any failure is a
    ``BadResponse`` (retryable: the image is gone, a new call makes a new one) or a transport
    error; never an ``AuthError``, because a 403 from a storage bucket says nothing about our key."""
    host = httpx.URL(url).host if url.startswith(("http://", "https://")) else None
    if host is None:
        raise BadResponse("image URL is not http(s)", model=model)
    error: ProviderError | None = None
    try:
        response = await client.get(url, follow_redirects=True)
    except httpx.HTTPError as exc:
        error = classify_transport_error(exc, model=model)
    if error is not None:
        raise error
    if not response.is_success:
        raise BadResponse(
            f"image download from {host} failed: HTTP {response.status_code}",
            http_status=response.status_code,
            model=model,
        )
    return response


def credentials(settings: ProviderSettings) -> tuple[dict[str, str], dict[str, str]]:
    """``(headers, query params)`` carrying exactly one credential, per ``auth_style``:
    ``header`` = ``x-goog-api-key``, ``bearer`` = ``Authorization: Bearer``, ``query`` =
    ``?key=``. Revealed here, at the last moment, and nowhere else."""
    key = settings.api_key.reveal() if settings.api_key else ""
    if not key:
        return {}, {}
    if settings.auth_style == "header":
        return {"x-goog-api-key": key}, {}
    if settings.auth_style == "bearer":
        return {"Authorization": f"Bearer {key}"}, {}
    return {}, {"key": key}


async def verify_image(
    data: bytes,
    declared_mime: str | None,
    expected: tuple[int, int] | None,
    *,
    model: str,
    context: str,
) -> tuple[str, int, int]:
    """Decode and measure the image off the event loop (a 4K PNG takes a noticeable slice
    of CPU, which would stall every other in-flight request), then check its size when
    ``expected`` is given. Failures are ``BadResponse`` tagged with the model."""
    try:
        mime, width, height = await asyncio.get_running_loop().run_in_executor(
            _DECODE_THREADS, inspect_image, data, declared_mime)
        if expected is not None:
            check_pixels(width, height, expected, context=context)
    except BadResponse as exc:
        exc.model = exc.model or model
        exc.http_status = exc.http_status or 200
        raise
    return mime, width, height
