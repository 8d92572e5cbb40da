"""The API key never appears in exception text, repr, args, or httpx/httpcore log records."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx
import pytest

from bananaflow.errors import ProviderError
from bananaflow.providers import make_provider
from bananaflow.providers.base import ImageRequest
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import Secret

KEY = "FAKELeakCanaryKeyZZZZ9876543210abcdef"
PRO = "gemini-3-pro-image"


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectTimeout(f"timed out connecting to {request.url}", request=request)


def _reset(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError(f"[Errno 104] Connection reset by peer while requesting {request.url}", request=request)


def _echo_400(request: httpx.Request) -> httpx.Response:
    # A hostile relay that echoes the URL (with ?key=) back in its error message.
    msg = f"bad request for {request.url} with key {KEY}"
    return httpx.Response(400, json={"error": {"code": 400, "message": msg, "status": "INVALID_ARGUMENT"}})


def _html_502(request: httpx.Request) -> httpx.Response:
    return httpx.Response(502, text=f"<html>upstream {request.url} failed</html>")


def _bad_json(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text=f"not json {request.url}")


@pytest.mark.parametrize("kind", ["gemini", "openai"])
@pytest.mark.parametrize("style", ["query", "header", "bearer"])
@pytest.mark.parametrize("handler", [_timeout, _reset, _echo_400, _html_502, _bad_json])
def test_key_never_leaks(
    kind: str, style: str, handler: Callable[[httpx.Request], httpx.Response], caplog: pytest.LogCaptureFixture
) -> None:
    settings = ProviderSettings(kind, "https://api.test", Secret(KEY), style, PRO)  # type: ignore[arg-type]
    caplog.set_level(logging.DEBUG, logger="httpx")
    caplog.set_level(logging.DEBUG, logger="httpcore")
    caplog.set_level(logging.DEBUG)

    async def go() -> ProviderError:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            provider = make_provider(settings, client)
            with pytest.raises(ProviderError) as info:
                await provider.generate(ImageRequest("p", PRO))
            assert KEY not in repr(provider)
            return info.value

    exc = asyncio.run(go())
    texts = [str(exc), repr(exc), repr(exc.args), exc.message]
    chain: BaseException | None = exc
    while chain is not None:  # nothing chained may carry the keyed URL either
        texts.append(repr(chain))
        chain = chain.__cause__ or (None if chain.__suppress_context__ else chain.__context__)
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args), str(record.msg)]
    assert caplog.records or handler in (_timeout, _reset)  # httpx did log the exchanges
    leaked = [t for t in texts if KEY in t]
    assert not leaked, leaked


def test_query_style_url_logged_redacted(caplog: pytest.LogCaptureFixture) -> None:
    settings = ProviderSettings("gemini", "https://api.test", Secret(KEY), "query", PRO)
    caplog.set_level(logging.DEBUG, logger="httpx")

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(_html_502)) as client:
            with pytest.raises(ProviderError):
                await make_provider(settings, client).generate(ImageRequest("p", PRO))

    asyncio.run(go())
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("key=***" in line for line in lines), lines
