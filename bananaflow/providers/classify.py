"""Turn a failed HTTP exchange into exactly one ``bananaflow.errors.ProviderError``.

Classification happens once, where the response is read, so that the retry policy, the
rate controller and the manifest agree. The status alone picks the class from
``bananaflow.errors.STATUS_ERRORS``; this module adds what only the body or the transport
tells apart (``shared/reference/gemini-image-api.md``)::

    transport timeout ............................. ProviderTimeout
    other transport failure ....................... NetworkError
    4xx moderation_blocked, content_policy_violation,
        "[IMAGE_SAFETY]" relayed, "safety system" . ContentBlocked (status ``blocked``)
    ErrorInfo MODEL_CAPACITY_EXHAUSTED, "No capacity
        available for model" (429 or 503) ......... Overloaded(reason="capacity"), not a throttle
    429 quotaId *PerDay*, "per day" in the text,
        quotaValue / quota_limit_value "0",
        "limit: 0" ................................ QuotaExhausted (reset at next midnight Pacific)
    429 otherwise ................................. RateLimited (retry_after from RetryInfo,
                                                    Retry-After, "Please retry in Ns",
                                                    OpenAI's "Please try again in 6s", or None)
    API_KEY_INVALID (on any status) ............... AuthError

Both Google's envelope ``{"error": {code, message, status, details}}`` and OpenAI's
``{"error": {message, type, code}}`` are understood, also list-wrapped (Vertex, streams) and
OpenRouter's ``{"error": {"message": "Provider returned error", "metadata": {"raw": ...}}}``
(the raw upstream text or body is read too); a JSON body without an envelope keeps its
``message``/``detail``; a body that is not JSON (a proxy's HTML page) falls back to the
status code. The payloads these rules were written against are in ``tests/fixtures/wire/``.
Messages are short and never include the request URL: with ``?key=`` auth, httpx puts the key in every URL it reports.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from bananaflow.errors import (
    AuthError,
    BadResponse,
    ContentBlocked,
    NetworkError,
    Overloaded,
    ProviderError,
    ProviderTimeout,
    QuotaExhausted,
    RateLimited,
    TransportError,
    error_for_status,
)
from bananaflow.providers.quota_day import next_quota_reset
from bananaflow.secrets import excerpt, redact

MAX_MESSAGE = 300
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
# Google: "Please retry in 10.689924287s."; OpenAI: "Please try again in 6s." / "in 1m30s" / "in 20ms".
_RETRY_IN = re.compile(
    r"(?:retry|try again) in\s+(?:(\d+)m(?!s))?\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\b", re.IGNORECASE
)
_LIMIT_ZERO = re.compile(r"\blimit:\s*0\b(?!\.\d)", re.IGNORECASE)
# A daily limit named in prose only (Vertex/GCP: "... limit 'GenerateContent requests per day' ...").
_PER_DAY = re.compile(r"per[\s_-]?day|perday|daily (?:limit|quota)", re.IGNORECASE)
# Gemini's own block reasons, relayed in an OpenAI-style 400 ("...blocked [IMAGE_SAFETY]").
_RELAYED_BLOCK = re.compile(r"\[(IMAGE_SAFETY|IMAGE_PROHIBITED_CONTENT|PROHIBITED_CONTENT|SAFETY|BLOCKLIST|SPII)\]")
_BLOCK_CODES = {"moderation_blocked", "content_policy_violation", "content_filter", "responsibleaipolicyviolation"}
_CAPACITY = "MODEL_CAPACITY_EXHAUSTED"
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_AUTH_CODES = {"API_KEY_INVALID", "invalid_api_key", "API_KEY_SERVICE_BLOCKED", "unauthorized"}
_QUOTA_CODES = {"insufficient_quota", "billing_hard_limit_reached"}


@dataclass(frozen=True)
class ErrorEnvelope:
    """What a provider's error body says, whichever dialect it speaks."""

    message: str = ""
    status: str | None = None  # Google's error.status ("RESOURCE_EXHAUSTED")
    code: str | None = None  # OpenAI's error.code or type ("invalid_api_key")
    reasons: tuple[str, ...] = ()  # google.rpc.ErrorInfo reasons ("API_KEY_INVALID")
    quota_ids: tuple[str, ...] = ()
    quota_values: tuple[str, ...] = ()
    retry_delay: float | None = None  # google.rpc.RetryInfo, in seconds
    details: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)
    error_type: str | None = None  # OpenAI's error.type ("image_generation_user_error")
    inner_code: str | None = None  # Azure's error.inner_error.code ("ResponsibleAIPolicyViolation")


def parse_envelope(payload: object) -> ErrorEnvelope | None:
    """Read Google's or OpenAI's ``{"error": {...}}``; None when ``payload`` is neither."""
    if isinstance(payload, list) and payload:  # Vertex and stream endpoints wrap the envelope in a list
        payload = payload[0]
    if not isinstance(payload, Mapping):
        return None
    err = payload.get("error")
    if isinstance(err, str):
        return ErrorEnvelope(message=err)
    if not isinstance(err, Mapping):
        return None
    details = tuple(d for d in err.get("details") or () if isinstance(d, Mapping))
    reasons, quota_ids, quota_values, retry_delay = _read_details(details)
    code = err.get("code")
    openai_code = err.get("type") if isinstance(code, int) or code is None else code
    status = err.get("status")
    inner = err.get("inner_error") or err.get("innererror")
    inner_code = inner.get("code") if isinstance(inner, Mapping) else None
    env = ErrorEnvelope(
        message=str(err.get("message") or ""),
        status=str(status) if status else None,
        code=str(openai_code) if openai_code else None,
        reasons=tuple(reasons),
        quota_ids=tuple(quota_ids),
        quota_values=tuple(quota_values),
        retry_delay=retry_delay,
        details=details,
        error_type=str(err["type"]) if err.get("type") else None,
        inner_code=str(inner_code) if inner_code else None,
    )
    return _with_upstream(env, err.get("metadata"))


def _read_details(details: tuple[Mapping[str, Any], ...]) -> tuple[list[str], list[str], list[str], float | None]:
    """ErrorInfo reasons, QuotaFailure ids/values (ErrorInfo's ``quota_limit_value`` too), RetryInfo."""
    reasons: list[str] = []
    quota_ids: list[str] = []
    quota_values: list[str] = []
    retry_delay: float | None = None
    for detail in details:
        kind = str(detail.get("@type", ""))
        if kind.endswith("ErrorInfo") and detail.get("reason"):
            reasons.append(str(detail["reason"]))
            meta = detail.get("metadata")
            if isinstance(meta, Mapping):  # Vertex: {"quota_limit": "...PerDay...", "quota_limit_value": "0"}
                if meta.get("quota_limit"):
                    quota_ids.append(str(meta["quota_limit"]))
                if meta.get("quota_limit_value") is not None:
                    quota_values.append(str(meta["quota_limit_value"]))
        elif kind.endswith("QuotaFailure"):
            for violation in detail.get("violations") or ():
                if isinstance(violation, Mapping):
                    if violation.get("quotaId"):
                        quota_ids.append(str(violation["quotaId"]))
                    if violation.get("quotaValue") is not None:
                        quota_values.append(str(violation["quotaValue"]))
        elif kind.endswith("RetryInfo"):
            retry_delay = parse_duration(detail.get("retryDelay"))
    return reasons, quota_ids, quota_values, retry_delay


def _with_upstream(env: ErrorEnvelope, metadata: object) -> ErrorEnvelope:
    """OpenRouter's ``metadata.raw``: the upstream's own text, or its whole error body as a
    string. Its message is kept after OpenRouter's ("Provider returned error: ..."), and an
    upstream envelope is classified as if it had come directly (a per-day 429 stays per-day)."""
    raw = metadata.get("raw") if isinstance(metadata, Mapping) else None
    if raw is None or raw == "":
        return env
    inner: ErrorEnvelope | None = None
    if isinstance(raw, str) and raw.lstrip()[:1] in ("{", "["):
        try:
            inner = parse_envelope(json.loads(raw))
        except ValueError:
            inner = None
    elif isinstance(raw, (Mapping, list)):
        inner = parse_envelope(raw)
    if inner is None:
        text = raw if isinstance(raw, str) else json.dumps(raw)
        return replace(env, message=f"{env.message}: {text}" if env.message else text)
    message = f"{env.message}: {inner.message}" if env.message else inner.message
    return replace(inner, message=message, code=inner.code or env.code)


def parse_duration(value: object) -> float | None:
    """Seconds in a protobuf Duration: ``"45.837906927s"``, or ``{"seconds", "nanos"}``."""
    if isinstance(value, Mapping):
        try:
            return float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
        except (TypeError, ValueError):
            return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value)
    if not match:
        return None
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from an HTTP ``Retry-After`` header, which is either seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def retry_delay_from_message(message: str) -> float | None:
    """The delay in Google's prose ("Please retry in 45.8s"), the last resort."""
    match = _RETRY_IN.search(message or "")
    if not match:
        return None
    minutes = float(match.group(1)) * 60.0 if match.group(1) else 0.0
    return minutes + float(match.group(2)) * _UNIT_SECONDS[match.group(3).lower()]


def classify_response(response: httpx.Response, *, model: str | None = None) -> ProviderError:
    """The error a non-2xx response (or a 2xx carrying an error envelope) stands for."""
    try:
        payload: object = json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        payload = None
    return classify_status(
        response.status_code,
        payload,
        headers=response.headers,
        reason_phrase=response.reason_phrase,
        body_preview=_preview(response),
        model=model,
    )


def classify_status(
    http_status: int,
    payload: object,
    *,
    headers: Mapping[str, str] | None = None,
    reason_phrase: str = "",
    body_preview: str = "",
    model: str | None = None,
) -> ProviderError:
    """Classify from the parts of a response; also used for envelopes inside a 200 body."""
    env = parse_envelope(payload)
    if env is not None and http_status < 400:
        # An error envelope inside a 200 (some relays): trust its numeric code if any.
        code = payload.get("error", {}).get("code") if isinstance(payload, Mapping) else None
        http_status = code if isinstance(code, int) and code >= 400 else 500
    detail = _summary(env, reason_phrase, body_preview, payload)
    message = f"HTTP {http_status}{f' {env.status}' if env and env.status else ''}: {detail}"
    api_status = env.status if env else None
    env = env or ErrorEnvelope()
    code = (env.code or "").lower()
    blocked = _block_reason(env, http_status)
    if blocked is not None:
        return ContentBlocked(message, reason=blocked, http_status=http_status, api_status=api_status, model=model)
    if _is_capacity(env):
        # Capacity is Google's, not our quota: a 429 or 503 with MODEL_CAPACITY_EXHAUSTED is
        # an overload (retried, breaker counts it, fallback may take another model) and must
        # not teach the adaptive rate that our limit is lower.
        return Overloaded(
            message, reason="capacity", retry_after=env.retry_delay or retry_delay_from_message(env.message),
            http_status=http_status, api_status=api_status, model=model,
        )
    if http_status == 429 or (code in _QUOTA_CODES):
        return _rate_limit_error(message, env, headers or {}, http_status, api_status, model)
    cls = AuthError if _is_auth(env) else error_for_status(http_status)
    if http_status < 400:  # 1xx/3xx: a redirect means the base URL is wrong; resending will not help
        message += " (unexpected status; check the base URL)"
    return cls(message, http_status=http_status, api_status=api_status, model=model)


def _block_reason(env: ErrorEnvelope, http_status: int) -> str | None:
    """The safety refusal an error body stands for, or None.

    Only on 4xx other than 401/403/404/429: a safety system answers "your request" with a
    400. Ambiguous bodies (DALL-E 2's legacy ``code: null`` with "rejected ... safety system",
    a relay's ``type: shell_api_error``) count as blocked: sending the same prompt again is
    refused again and billed on some relays, and a blocked item is remembered and reported
    rather than retried every night (``--retry-blocked`` sends it again on purpose)."""
    if not 400 <= http_status < 500 or http_status in (401, 403, 404, 429):
        return None
    for code in (env.code, env.inner_code):
        if code and code.lower() in _BLOCK_CODES:
            return code
    relayed = _RELAYED_BLOCK.search(env.message)
    if relayed:
        return relayed.group(1)
    text = env.message.lower()
    if "safety system" in text and "rejected" in text:
        return env.code or "safety_system"
    return None


def _is_capacity(env: ErrorEnvelope) -> bool:
    return _CAPACITY in env.reasons or "no capacity available for model" in env.message.lower()


def classify_transport_error(exc: BaseException, *, model: str | None = None) -> ProviderError:
    """Wrap an httpx exception without its text: httpx renders the request URL, which
    carries the key when auth_style is ``query``. Only the class name and host survive."""
    host = _host_of(exc)
    where = f" talking to {host}" if host else ""
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeout(f"{type(exc).__name__}{where}: no answer in time", model=model)
    if isinstance(exc, httpx.DecodingError):
        return BadResponse(f"{type(exc).__name__}{where}: response body could not be decoded", model=model)
    if isinstance(exc, (httpx.TransportError, httpx.RequestError, OSError)):
        return NetworkError(f"{type(exc).__name__}{where}: {_safe_reason(exc)}", model=model)
    return TransportError(f"{type(exc).__name__}{where}", model=model)


def _rate_limit_error(
    message: str,
    env: ErrorEnvelope,
    headers: Mapping[str, str],
    http_status: int,
    api_status: str | None,
    model: str | None,
) -> ProviderError:
    quota_id = ", ".join(env.quota_ids) or None
    quota_value = ", ".join(env.quota_values) or None
    limit_zero = "0" in env.quota_values or bool(_LIMIT_ZERO.search(env.message))
    # A daily limit named only in the prose (no QuotaFailure) is still daily: retrying it five
    # times per item burns requests and time until midnight Pacific. When a body names both a
    # per-minute and a per-day quota, the day wins: the safe reading for the shop's quota.
    per_day = any("perday" in q.lower() or _PER_DAY.search(q) for q in env.quota_ids) or bool(
        _PER_DAY.search(env.message)
    )
    billing = (env.code or "").lower() in _QUOTA_CODES
    if limit_zero or per_day or billing:
        reset_at = None if billing else next_quota_reset()
        return QuotaExhausted(
            _rate_limit_message(message, env, reset_at=reset_at, billing=billing, limit_zero=limit_zero),
            reset_at=reset_at,
            limit_zero=limit_zero, quota_id=quota_id, quota_value=quota_value, http_status=http_status,
            api_status=api_status, model=model,
        )
    retry_after = env.retry_delay
    if retry_after is None:
        retry_after = parse_retry_after(headers.get("retry-after"))
    if retry_after is None:
        retry_after = retry_delay_from_message(env.message)
    return RateLimited(
        _rate_limit_message(message, env, retry_after=retry_after), retry_after=retry_after, quota_id=quota_id,
        quota_value=quota_value, http_status=http_status, api_status=api_status, model=model,
    )


def _rate_limit_message(
    message: str,
    env: ErrorEnvelope,
    *,
    retry_after: float | None = None,
    reset_at: datetime | None = None,
    billing: bool = False,
    limit_zero: bool = False,
) -> str:
    """Google's 429 prose is mostly boilerplate and links; what matters is which quota,
    its limit, and when to try again: the delay of a per-minute limit, the reset of a
    daily one (never "retry in 47s" for a quota that comes back at midnight Pacific)."""
    head = message.split(":", 1)[0]
    if env.quota_ids:
        limits = f" (limit {', '.join(env.quota_values)})" if env.quota_values else ""
        text = f"{head}: quota {', '.join(env.quota_ids)} exceeded{limits}"
    else:
        marker = env.message.find("Quota exceeded for metric")
        text = message
        if marker > 0:
            text = head + ": " + _summary(ErrorEnvelope(message=env.message[marker:]), "", "")
        text = _RETRY_IN.sub("", text).rstrip(" .;") if reset_at is not None else text
    if billing:
        return text
    if reset_at is not None:
        when = reset_at.astimezone(UTC).isoformat(timespec="minutes")
        if limit_zero:
            return f"{text}; limit 0: the project has no quota for this model (not retried before {when})"
        return f"{text}; daily quota, resets at {when} (midnight Pacific)"
    if env.quota_ids and retry_after is not None:
        return f"{text}; retry in {retry_after:.1f}s"
    return text


def _is_auth(env: ErrorEnvelope | None) -> bool:
    if env is None:
        return False
    if any(r in _AUTH_CODES for r in env.reasons) or (env.code or "") in _AUTH_CODES:
        return True
    return "api key not valid" in env.message.lower()


def _summary(env: ErrorEnvelope | None, reason_phrase: str, body_preview: str, payload: object = None) -> str:
    if env is not None and env.message:
        text = env.message
    elif env is None and (bare := _bare_message(payload)):
        text = bare
    elif body_preview.lstrip().startswith("<"):
        text = f"{reason_phrase or 'error'} (HTML body from a proxy or gateway)"
    elif body_preview:
        kind = "JSON body without an error envelope" if payload is not None else "non-JSON body"
        text = f"{reason_phrase or 'error'} ({kind}: {body_preview!r})"
    else:
        text = reason_phrase or "empty body"
    text = " ".join(redact(text).split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def _bare_message(payload: object) -> str:
    """The text of a JSON error body that has no ``error`` envelope (``{"message": ...}``,
    FastAPI's ``{"detail": ...}``): a relay's own words, not "non-JSON"."""
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if not isinstance(payload, Mapping):
        return ""
    for key in ("message", "detail", "error_description", "msg", "title"):
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            return value
        if value and not isinstance(value, (Mapping, list)):
            return str(value)
    return ""


def _preview(response: httpx.Response) -> str:
    try:
        return excerpt(response.content, 120)  # redacted before the cut
    except Exception:  # pragma: no cover - content always bytes once read
        return ""


def _host_of(exc: BaseException) -> str | None:
    if not isinstance(exc, httpx.HTTPError):  # a raw OSError from a custom transport names no request
        return None
    try:
        request = exc.request
    except RuntimeError:  # httpx raises it when the error was made without a request
        return None
    return request.url.host or None


def _safe_reason(exc: BaseException) -> str:
    """The OS-level reason without URLs: errno text is safe, httpx's own text may not be."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    text = redact(str(exc))
    text = re.sub(r"https?://\S+", "<url>", text)
    return " ".join(text.split())[:MAX_MESSAGE] or "connection failed"
