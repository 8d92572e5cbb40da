"""Google's OAuth token endpoint, as a service-account key file's ``token_uri`` sees it.

``POST /token`` takes ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` and a
signed JWT ``assertion`` (what google-auth sends), checks it like Google does (RS256
signature against the service account's public key when the simulator knows it, audience =
this endpoint, not expired, a scope) and answers ``{"access_token", "expires_in",
"token_type"}``. The Vertex routes then accept only tokens issued here and not expired.
"""
from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_PATH = "/token"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


class TokenIssuer:
    """Issued access tokens and their expiry; counts what it issued and refused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self.issued = 0
        self.refused = 0

    def issue(self, ttl_s: float) -> str:
        token = "ya29.sim-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = time.time() + ttl_s
            self.issued += 1
        return token

    def valid(self, token: str | None) -> bool:
        if not token:
            return False
        with self._lock:
            expiry = self._tokens.get(token)
        return expiry is not None and expiry > time.time()

    def reset(self) -> None:
        """Zero the counters and forget every token issued."""
        with self._lock:
            self._tokens.clear()
            self.issued = self.refused = 0

    def revoke_all(self) -> None:
        """Every token issued so far stops working (tests of the 401 path)."""
        with self._lock:
            self._tokens.clear()

    def counters(self) -> dict[str, int]:
        return {"tokens_issued": self.issued, "tokens_refused": self.refused}


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_assertion(assertion: str, audience: str, public_keys: tuple[str, ...], now: float) -> str | None:
    """None when the JWT is acceptable, else Google's ``error_description``."""
    try:
        head_b64, claims_b64, sig_b64 = assertion.split(".")
        header: Any = json.loads(_b64url(head_b64))
        claims: Any = json.loads(_b64url(claims_b64))
        signature = _b64url(sig_b64)
    except (ValueError, TypeError):
        return "Invalid JWT: malformed."
    if not isinstance(header, dict) or header.get("alg") != "RS256" or not isinstance(claims, dict):
        return "Invalid JWT: algorithm must be RS256."
    if public_keys and not _signed_by_one_of(public_keys, f"{head_b64}.{claims_b64}".encode("ascii"), signature):
        return "Invalid JWT Signature."
    if claims.get("aud") not in (audience, GOOGLE_TOKEN_URI):  # google-auth always names Google's
        return f"Invalid JWT: audience must be {GOOGLE_TOKEN_URI}."
    if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] < now:
        return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
    if not claims.get("scope") and not claims.get("target_audience"):
        return "Invalid OAuth scope or ID token audience provided."
    return None


def _signed_by_one_of(public_keys: tuple[str, ...], signed: bytes, signature: bytes) -> bool:
    for pem in public_keys:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
        if not isinstance(key, rsa.RSAPublicKey):
            continue
        try:
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            return True
        except InvalidSignature:
            continue
    return False


async def token(request: Request) -> Response:
    """The token endpoint: a JWT-bearer grant in, an access token out."""
    engine = request.app.state.engine
    issuer: TokenIssuer = engine.oauth
    config = engine.config
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    if form.get("grant_type") != JWT_BEARER:
        issuer.refused += 1
        return JSONResponse({"error": "unsupported_grant_type", "error_description": "Invalid grant_type."}, 400)
    audience = str(request.url.replace(query=""))
    problem = check_assertion(str(form.get("assertion") or ""), audience, config.oauth_public_keys, time.time())
    if problem is not None:
        issuer.refused += 1
        return JSONResponse({"error": "invalid_grant", "error_description": problem}, 400)
    ttl = config.oauth_token_ttl_s
    return JSONResponse({"access_token": issuer.issue(ttl), "expires_in": int(ttl), "token_type": "Bearer"})


METADATA_FLAVOR = {"Metadata-Flavor": "Google"}


async def metadata(request: Request) -> Response:
    """The GCE metadata server's answers google-auth's ADC uses on Google Cloud (point
    ``GCE_METADATA_HOST`` and ``GCE_METADATA_IP`` at the simulator): the ping, the default
    service account, its token, the project id and the universe domain."""
    if request.headers.get("metadata-flavor") != "Google":
        return Response("Missing Metadata-Flavor:Google header.", 403, headers=METADATA_FLAVOR)
    engine = request.app.state.engine
    config = engine.config
    path = request.url.path.removeprefix("/computeMetadata/v1/").rstrip("/")
    account = "instance/service-accounts/default"
    if request.url.path == "/":
        return Response("", 200, headers=METADATA_FLAVOR)
    if path == account:
        email = f"{config.metadata_project}-compute@developer.gserviceaccount.com"
        return JSONResponse({"aliases": ["default"], "email": email,
                             "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}, headers=METADATA_FLAVOR)
    if path == f"{account}/token":
        ttl = config.oauth_token_ttl_s
        return JSONResponse({"access_token": engine.oauth.issue(ttl), "expires_in": int(ttl), "token_type": "Bearer"},
                            headers=METADATA_FLAVOR)
    if path == "project/project-id":
        return Response(config.metadata_project, 200, media_type="text/plain", headers=METADATA_FLAVOR)
    if path == "universe/universe-domain":
        return Response("googleapis.com", 200, media_type="text/plain", headers=METADATA_FLAVOR)
    return Response("not found", 404, headers=METADATA_FLAVOR)


routes = [
    Route(TOKEN_PATH, token, methods=["POST"]),
    Route("/", metadata, methods=["GET"]),
    Route("/computeMetadata/v1/{path:path}", metadata, methods=["GET"]),
]
