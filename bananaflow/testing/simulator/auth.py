"""Which API keys a request presents.

Google takes the key from ``x-goog-api-key`` (what the SDK sends), ``?key=`` or, on the
same path through relays, ``Authorization: Bearer``; OpenAI-compatible routes take only
the bearer token. The simulator checks the same places so a client that puts the key
somewhere else fails here first.
"""
from __future__ import annotations

import hmac

from starlette.requests import Request


def presented_keys(request: Request, *, bearer_only: bool = False) -> list[str]:
    """Every credential the request carries, in the places the route honours."""
    keys: list[str] = []
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        keys.append(token.strip())
    if not bearer_only:
        if "x-goog-api-key" in request.headers:
            keys.append(request.headers["x-goog-api-key"])
        if "key" in request.query_params:
            keys.append(request.query_params["key"])
    return keys


def is_authorized(request: Request, required_key: str | None, *, bearer_only: bool = False) -> bool:
    """True when no key is required, or some presented key is the required one."""
    if required_key is None:
        return True
    return any(
        hmac.compare_digest(key.encode("utf-8"), required_key.encode("utf-8"))
        for key in presented_keys(request, bearer_only=bearer_only)
    )
