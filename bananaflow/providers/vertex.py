"""Nano Banana through Vertex AI's ``generateContent``: the AI Studio body, another door.

The request and response bodies are AI Studio's (``providers.gemini`` builds and parses
them); what differs is the URL
(``{root}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent``),
the credential (an OAuth bearer token from ADC, shared by the whole process, see
``providers.gcp_auth``) and the errors, which ``explain_vertex_error`` turns into the fix:

* 401 UNAUTHENTICATED: the token was refused; one new token is fetched and the call sent
  again once, then it is an ``AuthError`` naming the credential source;
* 403 PERMISSION_DENIED: the role to grant (``roles/aiplatform.user``) and to whom, or
  the API to enable (SERVICE_DISABLED);
* 429 RESOURCE_EXHAUSTED without a quota id: Dynamic Shared Quota, capacity shared by all
  customers of the region with no per-project limit to configure, so the adaptive rate
  controller (AIMD) is the default on this route;
* bodies wrapped in a list (``[{"error": {...}}]``) are read like plain ones (``classify``).

Batch prediction on Vertex reads from Cloud Storage or BigQuery, not the Files API, and is
not supported: ``planning.mode`` says so when ``--mode batch`` is asked for.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import quote

import httpx

from bananaflow.errors import AuthError, ConfigurationError, ProviderError, RateLimited
from bananaflow.providers.base import GeneratedImage, ImageRequest
from bananaflow.providers.gcp_auth import AccessTokens, shared_tokens
from bananaflow.providers.gemini import GeminiProvider
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import mask_url, redact

T = TypeVar("T")

VERTEX_USER_ROLE = "roles/aiplatform.user"
DSQ_NOTE = (
    "Vertex AI Dynamic Shared Quota: capacity is shared in the region and there is no per-project limit "
    "to raise; bananaflow backs off adaptively (the global endpoint, GOOGLE_CLOUD_LOCATION=global, and "
    "Provisioned Throughput give fewer 429s)"
)


def vertex_model_path(settings: ProviderSettings, model: str) -> str:
    """``/v1/projects/{project}/locations/{location}/publishers/google/models/{model}``."""
    if not settings.project or not settings.location:
        raise ConfigurationError("Vertex AI needs GOOGLE_CLOUD_PROJECT (and GOOGLE_CLOUD_LOCATION, default global)")
    return (
        f"/v1/projects/{quote(settings.project, safe='')}/locations/{quote(settings.location, safe='')}"
        f"/publishers/google/models/{quote(model, safe='.-_')}"
    )


async def resend_after_revoked_token(
    send: Callable[[], Awaitable[T]], tokens: AccessTokens, last_token: Callable[[], str | None],
    settings: ProviderSettings,
) -> T:
    """``send()``, once more with a new token when Vertex answers 401 (a token can be revoked
    before it expires); any failure explained with Vertex's fix (``explain_vertex_error``)."""
    error: ProviderError | None = None
    for attempt in (1, 2):
        try:
            return await send()
        except AuthError as exc:
            token = last_token()
            if exc.http_status == 401 and attempt == 1 and token:
                tokens.invalidate(token)
                continue
            error = exc
        except ProviderError as exc:
            error = exc
        break
    assert error is not None
    raise explain_vertex_error(error, settings, tokens.service_account)


def explain_vertex_error(exc: ProviderError, settings: ProviderSettings, who: str | None = None) -> ProviderError:
    """``exc`` with the fix for Vertex's 401, 403 and 429 added to its message."""
    fix = ""
    if exc.http_status == 401 or exc.api_status == "UNAUTHENTICATED":
        fix = ("the OAuth token was refused: check GOOGLE_APPLICATION_CREDENTIALS (or the GcpCredentials block) "
               "points at a current service-account key")
    elif exc.http_status == 403 and ("SERVICE_DISABLED" in exc.message or "has not been used" in exc.message):
        fix = f"enable the Vertex AI API (aiplatform.googleapis.com) in project {settings.project}"
    elif exc.http_status == 403:
        member = f"serviceAccount:{who}" if who else "the service account (or user) of these credentials"
        fix = (f"grant {member} the role {VERTEX_USER_ROLE} (Vertex AI User) on project {settings.project}: "
               f"gcloud projects add-iam-policy-binding {settings.project} --member={member if who else 'MEMBER'} "
               f"--role={VERTEX_USER_ROLE}")
    elif isinstance(exc, RateLimited) and exc.quota_id is None:
        fix = DSQ_NOTE
    if fix:
        exc.message = redact(f"{exc.message} -> {fix}")
        exc.args = (exc.message,)
    return exc


class VertexProvider(GeminiProvider):
    """``ImageProvider`` for Vertex AI: Gemini's wire format, an OAuth bearer token."""

    name = "vertex"

    def __init__(
        self, settings: ProviderSettings, client: httpx.AsyncClient | None = None, tokens: AccessTokens | None = None
    ) -> None:
        super().__init__(settings, client)
        vertex_model_path(settings, settings.model)  # a missing project fails here, before any call
        self._tokens = tokens
        self._token: str | None = None

    def __repr__(self) -> str:
        return f"VertexProvider(base_url={mask_url(self.base_url)!r}, project={self.settings.project!r}, " \
               f"location={self.settings.location!r})"

    @property
    def tokens(self) -> AccessTokens:
        """The process-wide token source (created on first use: ADC may ask the metadata server)."""
        if self._tokens is None:
            self._tokens = shared_tokens(self.settings.gcp_credentials)
        return self._tokens

    def endpoint(self, model: str) -> str:
        return f"{self.base_url}{vertex_model_path(self.settings, model)}:generateContent"

    async def auth_headers(self) -> dict[str, str]:
        self._token = await self.tokens.token()
        return {"Authorization": f"Bearer {self._token}"}

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        """One attempt (plus one resend with a new token after a 401: tokens can be revoked early)."""
        return await resend_after_revoked_token(lambda: super(VertexProvider, self).generate(request), self.tokens,
                                                lambda: self._token, self.settings)
