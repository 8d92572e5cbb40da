"""Checks of a provider setup that cost nothing: the model id, the endpoint, the credential.

``bananaflow doctor`` runs these before a night's run. The credential is tested with a
free model-metadata call (``GET models/{model}`` on AI Studio, ``GET
publishers/google/models/{model}`` on Vertex AI, ``GET models`` on a relay), never with an
image. Every failure is a ``Finding`` with the fix, in the words of the 429/403/502 guide:
429 per minute vs per day, 403 key or region (or the IAM role on Vertex), 502/HTML from a
relay or proxy, TLS interception.
"""
from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

from bananaflow.errors import (
    AuthError,
    BananaflowError,
    ConfigurationError,
    ModelNotFound,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    ServerError,
)
from bananaflow.providers._http import credentials
from bananaflow.providers.classify import classify_response
from bananaflow.providers.models import get_model
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import redact

#: Model ids Google has shut down, and what replaces each.
RETIRED_MODELS = {
    "gemini-3-pro-image-preview": "gemini-3-pro-image",
    "gemini-3.1-flash-image-preview": "gemini-3.1-flash-image",
    "gemini-2.5-flash-image-preview": "gemini-2.5-flash-image",
    "gemini-2.0-flash-preview-image-generation": "gemini-2.5-flash-image",
}


_COUNT_BODY = {"contents": [{"role": "user", "parts": [{"text": "bananaflow doctor"}]}]}


@dataclass(frozen=True)
class Finding:
    """One check's verdict: a line, and the fix when it failed."""

    name: str
    ok: bool
    line: str
    fix: str = ""


def check_model_id(model: str) -> Finding:
    """Known to bananaflow, and not shut down (no call)."""
    replacement = RETIRED_MODELS.get(model)
    if replacement:
        return Finding("model", False, f"{model} has been shut down by Google",
                       f"use {replacement} (--model {replacement} or BANANAFLOW_MODEL={replacement})")
    try:
        spec = get_model(model)
    except ConfigurationError as exc:
        return Finding("model", False, exc.message, "pick a known id, or describe it in BANANAFLOW_MODELS_FILE")
    return Finding("model", True, f"{spec.id} ({spec.nickname}) sizes {', '.join(spec.sizes)}")


def metadata_url(settings: ProviderSettings, model: str) -> str:
    """The free call for this provider kind: model metadata; on Vertex AI ``countTokens`` in
    the project, which needs the same IAM permission as ``generateContent``."""
    if settings.kind == "vertex":
        from bananaflow.providers.vertex import vertex_model_path

        return f"{settings.base_url}{vertex_model_path(settings, model)}:countTokens"
    if settings.kind == "openai":
        return f"{settings.base_url}/models"
    return f"{settings.base_url}/v1beta/models/{model}"


async def probe_provider(settings: ProviderSettings, model: str, client: httpx.AsyncClient | None = None) -> list[Finding]:
    """The endpoint and the credential, from one metadata call."""
    try:
        headers, params = await _auth(settings)
    except BananaflowError as exc:
        return [Finding("credential", False, exc.message, _token_fix(settings))]
    own = client is None
    client = client or httpx.AsyncClient(timeout=httpx.Timeout(min(settings.timeout_s, 30.0)), follow_redirects=False)
    try:
        if settings.kind == "vertex":
            response = await client.post(metadata_url(settings, model), headers=headers, json=_COUNT_BODY)
        else:
            response = await client.get(metadata_url(settings, model), headers=headers, params=params)
    except httpx.HTTPError as exc:
        return [_transport_finding(exc, settings)]
    finally:
        if own:
            await client.aclose()
    return _answer_findings(response, settings, model)


async def _auth(settings: ProviderSettings) -> tuple[dict[str, str], dict[str, str]]:
    if settings.kind != "vertex":
        return credentials(settings)
    from bananaflow.providers.gcp_auth import shared_tokens

    token = await shared_tokens(settings.gcp_credentials).token()
    return {"Authorization": f"Bearer {token}"}, {}


def _service_account(settings: ProviderSettings) -> str | None:
    if settings.kind != "vertex":
        return None
    from bananaflow.providers.gcp_auth import shared_tokens

    return shared_tokens(settings.gcp_credentials).service_account


def _token_fix(settings: ProviderSettings) -> str:
    if settings.kind == "vertex":
        return ("set GOOGLE_APPLICATION_CREDENTIALS to a current service-account key file (or name a GcpCredentials "
                "block), or run `gcloud auth application-default login`")
    return "set GEMINI_API_KEY (AI Studio) or OPENAI_API_KEY (relay)"


def _transport_finding(exc: httpx.HTTPError, settings: ProviderSettings) -> Finding:
    host = httpx.URL(settings.base_url).host
    if _is_tls(exc):
        return Finding("endpoint", False, f"TLS handshake with {host} failed (certificate not trusted)",
                       "a TLS-intercepting proxy is in the way: point SSL_CERT_FILE (and REQUESTS_CA_BUNDLE, "
                       "AWS_CA_BUNDLE) at its CA certificate, or set NO_PROXY for this host")
    if isinstance(exc, httpx.TimeoutException):
        return Finding("endpoint", False, f"{host} did not answer in time",
                       "check the network, HTTPS_PROXY/NO_PROXY, and the base URL")
    return Finding("endpoint", False, f"cannot reach {host} ({type(exc).__name__})",
                   "check the base URL (GOOGLE_GEMINI_BASE_URL / GOOGLE_VERTEX_BASE_URL / OPENAI_BASE_URL), "
                   "DNS, and HTTPS_PROXY/NO_PROXY")


def _is_tls(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(cause):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _answer_findings(response: httpx.Response, settings: ProviderSettings, model: str) -> list[Finding]:
    host = response.url.host
    content_type = response.headers.get("content-type", "")
    html = "html" in content_type or response.content.lstrip()[:1] == b"<"
    if html:
        return [Finding("endpoint", False, f"{host} answered HTTP {response.status_code} with an HTML page, not the API",
                        "a proxy, captive portal or relay is in the way: check HTTPS_PROXY and the base URL, "
                        "or the relay's status page (HTML 502 = the relay could not reach Google)")]
    endpoint = Finding("endpoint", True, f"{host} answers with the API's JSON (HTTP {response.status_code})")
    if settings.kind == "openai" and response.status_code in (404, 405):
        return [endpoint, Finding("credential", True, "the relay does not list models (GET models), so the key "
                                  "cannot be checked without generating an image: the first request of a run will")]
    if response.is_success:
        return [endpoint, Finding("credential", True, f"accepted; {_model_name(response, model)} is available "
                                  "(metadata call, no image made)")]
    error = classify_response(response, model=model)
    return [endpoint, Finding("credential", False, error.message, fix_for(error, settings, model, _service_account(settings)))]


def _model_name(response: httpx.Response, model: str) -> str:
    try:
        payload: Any = json.loads(response.content)
    except ValueError:
        return model
    name = payload.get("name") if isinstance(payload, dict) else None
    return str(name) if name else f"{model} (countTokens)"


def fix_for(error: ProviderError, settings: ProviderSettings, model: str, who: str | None = None) -> str:
    """The fix the troubleshooting guide gives for this class of error."""
    if isinstance(error, QuotaExhausted):
        if error.limit_zero:
            return ("this project has no quota for the model (limit 0): enable billing on the key's project or "
                    "pick a model your tier includes")
        return ("the per-day quota is used up: it resets at midnight Pacific; lower --rpd to spread the run, "
                "or raise the tier")
    if isinstance(error, RateLimited):
        if settings.kind == "vertex":
            return "Dynamic Shared Quota is busy: run with the adaptive controller (the default on Vertex) and retry"
        return "the per-minute limit was hit: lower --rpm/--concurrency to your tier's limits, or use --adaptive"
    if isinstance(error, ModelNotFound):
        replacement = RETIRED_MODELS.get(model)
        return f"use {replacement}" if replacement else "check the model id; this endpoint does not serve it"
    if isinstance(error, AuthError):
        return _auth_fix(error, settings, who)
    if isinstance(error, ServerError) and error.http_status == 502:
        return "a relay or gateway failed to reach Google (502): check the relay, or call Google directly"
    if isinstance(error, ServerError):
        return "the service is failing or overloaded now: retry later (runs retry this on their own)"
    return "check the base URL and the request settings"


def _auth_fix(error: AuthError, settings: ProviderSettings, who: str | None = None) -> str:
    if settings.kind == "vertex":
        if error.http_status == 403:
            member = f"serviceAccount:{who}" if who else "the credentials' service account (or user)"
            return (f"grant {member} roles/aiplatform.user on project {settings.project} (gcloud projects "
                    f"add-iam-policy-binding {settings.project} --member={member if who else 'MEMBER'} "
                    "--role=roles/aiplatform.user), and enable the Vertex AI API there")
        return "the OAuth token was refused: use a current service-account key (GOOGLE_APPLICATION_CREDENTIALS)"
    if error.http_status == 403:
        return ("403: the key is restricted (API restrictions must allow the Generative Language API) or the "
                "region is not supported: Gemini is not available in every country; use a key from a project "
                "without restrictions, or a relay in a supported region")
    return redact("the key is not valid: create one at https://aistudio.google.com/apikey and set GEMINI_API_KEY")
