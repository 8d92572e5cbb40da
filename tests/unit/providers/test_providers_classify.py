"""Every row of the error table, through GeminiProvider against httpx.MockTransport fakes."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from bananaflow.errors import (
    AuthError,
    BadResponse,
    InvalidRequest,
    ModelNotFound,
    NetworkError,
    Overloaded,
    ProviderError,
    ProviderTimeout,
    QuotaExhausted,
    RateLimited,
    ServerError,
    error_for_status,
    is_retryable,
)
from bananaflow.providers.base import ImageRequest
from bananaflow.providers.classify import (
    classify_status,
    parse_duration,
    parse_retry_after,
    retry_delay_from_message,
)
from bananaflow.providers.gemini import GeminiProvider
from bananaflow.providers.quota_day import QUOTA_TZ, next_quota_reset
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import Secret

KEY = "FAKEClassifyTestKey000000000000000000"
MODEL = "gemini-3-pro-image"
QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


def google_error(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> dict:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return {"error": error}


def quota(quota_id: str, value: str = "20") -> dict[str, Any]:
    return {
        "@type": QUOTA_FAILURE,
        "violations": [
            {
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_paid_tier_requests",
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": MODEL},
                "quotaValue": value,
            }
        ],
    }


def fail_with(handler: Callable[[httpx.Request], httpx.Response]) -> ProviderError:
    settings = ProviderSettings("gemini", "https://gemini.test", Secret(KEY), "header", MODEL)

    async def go() -> ProviderError:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            provider = GeminiProvider(settings, client)
            with pytest.raises(ProviderError) as info:
                await provider.generate(ImageRequest(prompt="a banana", model=MODEL))
            return info.value

    return asyncio.run(go())


def respond(status: int, body: Any = None, *, text: str | None = None, headers: dict | None = None):
    def handler(request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, text=text, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return handler


def test_429_per_minute_uses_retry_info() -> None:
    body = google_error(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota. Please retry in 45.837906927s.",
        [quota("GenerateRequestsPerMinutePerProjectPerModel"), {"@type": RETRY_INFO, "retryDelay": "45.837906927s"}],
    )
    exc = fail_with(respond(429, body))
    assert type(exc) is RateLimited and is_retryable(exc)
    assert exc.retry_after == pytest.approx(45.837906927)
    assert exc.quota_id == "GenerateRequestsPerMinutePerProjectPerModel"
    assert exc.http_status == 429 and exc.api_status == "RESOURCE_EXHAUSTED" and exc.model == MODEL


def test_429_retry_after_header_seconds_and_date() -> None:
    body = google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted")
    exc = fail_with(respond(429, body, headers={"Retry-After": "30"}))
    assert isinstance(exc, RateLimited) and exc.retry_after == 30.0
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    exc = fail_with(respond(429, body, headers={"Retry-After": when}))
    assert isinstance(exc, RateLimited) and 100 < exc.retry_after <= 120


def test_429_delay_from_message_only() -> None:
    body = google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded. Please retry in 45.8s.", [])
    exc = fail_with(respond(429, body))
    assert isinstance(exc, RateLimited) and exc.retry_after == pytest.approx(45.8)


def test_429_without_details_has_no_delay() -> None:
    exc = fail_with(respond(429, google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted")))
    assert type(exc) is RateLimited and exc.retry_after is None


def test_429_per_day_is_quota_exhausted_until_pacific_midnight() -> None:
    body = google_error(
        429, "RESOURCE_EXHAUSTED", "quota exceeded", [quota("GenerateRequestsPerDayPerProjectPerModel", "250")]
    )
    exc = fail_with(respond(429, body))
    assert type(exc) is QuotaExhausted and not is_retryable(exc) and not exc.limit_zero
    local = exc.reset_at.astimezone(QUOTA_TZ)
    assert (local.hour, local.minute, local.second) == (0, 0, 0)
    assert timedelta(0) < exc.reset_at - datetime.now(UTC) <= timedelta(hours=25)


@pytest.mark.parametrize(
    "body",
    [
        google_error(429, "RESOURCE_EXHAUSTED", "quota", [quota("GenerateRequestsPerMinutePerProjectPerModel", "0")]),
        google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for metric: x, limit: 0, model: gemini-3-pro-image"),
    ],
    ids=["quotaValue-0", "limit-0-text"],
)
def test_429_limit_zero(body: dict) -> None:
    exc = fail_with(respond(429, body))
    assert type(exc) is QuotaExhausted and exc.limit_zero and exc.reset_at is not None


def test_400_bad_ratio_is_invalid_request() -> None:
    body = google_error(400, "INVALID_ARGUMENT", "Unsupported aspect ratio: 7:3")
    exc = fail_with(respond(400, body))
    assert type(exc) is InvalidRequest and not is_retryable(exc)
    assert "7:3" in str(exc) and "400" in str(exc)


def test_400_api_key_invalid_is_auth_error() -> None:
    body = google_error(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        [{"@type": ERROR_INFO, "reason": "API_KEY_INVALID", "domain": "googleapis.com"}],
    )
    assert type(fail_with(respond(400, body))) is AuthError


@pytest.mark.parametrize("status", [401, 403])
def test_401_403_are_auth_errors(status: int) -> None:
    exc = fail_with(respond(status, google_error(status, "PERMISSION_DENIED", "Your API key was reported as leaked.")))
    assert type(exc) is AuthError and not is_retryable(exc)


def test_404_is_model_not_found() -> None:
    body = google_error(404, "NOT_FOUND", "models/gemini-3-pro-image-preview is not found for API version v1beta")
    exc = fail_with(respond(404, body))
    assert type(exc) is ModelNotFound and not is_retryable(exc)


@pytest.mark.parametrize("status", [408, 500, 504])
def test_server_errors_are_retryable(status: int) -> None:
    exc = fail_with(respond(status, google_error(status, "INTERNAL", "An internal error has occurred.")))
    assert type(exc) is ServerError and is_retryable(exc) and exc.http_status == status


def test_502_html_page_falls_back_to_status() -> None:
    page = "<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>"
    exc = fail_with(respond(502, text=page, headers={"content-type": "text/html"}))
    assert type(exc) is ServerError and exc.api_status is None
    assert "502" in str(exc) and "HTML" in str(exc) and "<center>" not in str(exc)


def test_503_is_overloaded() -> None:
    exc = fail_with(respond(503, google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")))
    assert type(exc) is Overloaded and is_retryable(exc)


def test_timeout_is_provider_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    exc = fail_with(handler)
    assert type(exc) is ProviderTimeout and is_retryable(exc) and exc.http_status is None


def test_connection_reset_is_network_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)

    exc = fail_with(handler)
    assert type(exc) is NetworkError and is_retryable(exc)
    assert exc.__context__ is None and exc.__cause__ is None  # nothing chained that could carry URLs


@pytest.mark.parametrize("text", ["<html>oops</html>", '{"candidates": [{"content": {"parts": [{"inlin'])
def test_200_non_json_or_truncated_is_bad_response(text: str) -> None:
    exc = fail_with(respond(200, text=text))
    assert type(exc) is BadResponse and is_retryable(exc)


def test_200_with_error_envelope_is_classified() -> None:
    exc = fail_with(respond(200, google_error(503, "UNAVAILABLE", "high demand")))
    assert type(exc) is Overloaded


# OpenAI-style envelopes, as relays send them.
@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (401, {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}, AuthError),
        (400, {"message": "Invalid API key", "type": "invalid_request_error", "code": "invalid_api_key"}, AuthError),
        (429, {"message": "Rate limit reached. Please retry in 2s.", "type": "requests", "code": "rate_limit_exceeded"}, RateLimited),
        (429, {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}, QuotaExhausted),
        (404, {"message": "The model does not exist", "type": "invalid_request_error", "code": "model_not_found"}, ModelNotFound),
        (400, {"message": "Invalid size", "type": "invalid_request_error", "code": None}, InvalidRequest),
    ],
)
def test_openai_envelopes(status: int, error: dict, expected: type) -> None:
    exc = classify_status(status, {"error": error})
    assert type(exc) is expected
    assert error["message"] in str(exc)


def test_openai_rate_limit_delay_from_message() -> None:
    exc = classify_status(429, {"error": {"message": "Please retry in 2s.", "code": "rate_limit_exceeded"}})
    assert isinstance(exc, RateLimited) and exc.retry_after == 2.0


def test_long_messages_are_truncated() -> None:
    exc = classify_status(500, {"error": {"code": 500, "message": "x" * 5000, "status": "INTERNAL"}})
    assert len(str(exc)) < 400


def test_parsers() -> None:
    assert parse_duration("45.837906927s") == pytest.approx(45.837906927)
    assert parse_duration({"seconds": "3", "nanos": 500000000}) == 3.5
    assert parse_duration("soon") is None
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("garbage") is None
    assert retry_delay_from_message("Please retry in 558.5ms.") == pytest.approx(0.5585)
    assert retry_delay_from_message("nothing here") is None
    # 2026-03-08 is the spring-forward day; just before midnight Pacific.
    now = datetime(2026, 3, 8, 7, 59, tzinfo=UTC).timestamp()
    assert next_quota_reset(now) == datetime(2026, 3, 8, 0, 0, tzinfo=QUOTA_TZ)
    now = datetime(2026, 7, 1, 12, 0, tzinfo=UTC).timestamp()
    assert next_quota_reset(now).astimezone(UTC) == datetime(2026, 7, 2, 7, 0, tzinfo=UTC)


def test_odd_statuses_without_body_still_classify() -> None:
    assert type(classify_status(418, None)) is InvalidRequest
    assert type(classify_status(302, None)) is InvalidRequest
    assert type(classify_status(599, None)) is ServerError


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 413, 422, 425, 499, 500, 502, 503, 504])
def test_a_body_that_says_nothing_follows_the_status_table(status: int) -> None:
    assert type(classify_status(status, None)) is error_for_status(status)
