"""Answers of the OpenAI-compatible route, in OpenAI's shapes.

Errors use OpenAI's envelope ``{"error": {"message", "type", "param", "code"}}`` with
the status codes the ``openai`` SDK maps to its exception classes (429 RateLimitError,
400 BadRequestError, 401 AuthenticationError, 404 NotFoundError), so a client written
against that SDK classifies simulator failures exactly as it would real ones.
"""
from __future__ import annotations

import math
import time
from typing import Any

from starlette.responses import JSONResponse, Response

from bananaflow.testing.simulator.calls import ImageCall, WireError
from bananaflow.testing.simulator.engine import FinalImage
from bananaflow.testing.simulator.faults.quota import QuotaRejection
from bananaflow.testing.simulator.files import FileStore
from bananaflow.testing.simulator.usage import usage_for
from bananaflow.testing.simulator.wire_shapes import ERROR_SHAPES

_FORMATS = {"image/png": "png", "image/jpeg": "jpeg"}


def openai_error(
    status: int, message: str, error_type: str, param: str | None = None, code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """OpenAI's error envelope."""
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


class OpenAIRenderer:
    """Writes engine verdicts as ``images/generations`` answers. ``response_format`` is
    set once the body has been read."""

    def __init__(self, files: FileStore, base_url: str, *, retry_after_header: bool = True) -> None:
        self._files = files
        self._base_url = base_url.rstrip("/")
        self._retry_after_header = retry_after_header
        self.response_format = "b64_json"

    def wire_error(self, error: WireError) -> Response:
        code = "model_not_found" if error.http_status == 404 else None
        return openai_error(error.http_status, error.message, "invalid_request_error", error.field, code)

    def bad_key(self) -> Response:
        return openai_error(401, "Incorrect API key provided.", "invalid_request_error", None, "invalid_api_key")

    def rejection(self, rejection: QuotaRejection) -> Response:
        if rejection.retry_delay is None:
            return openai_error(
                429, "You exceeded your current quota, please check your plan and billing details "
                f"(limit: {rejection.quota_value}, model: {rejection.model}).",
                "insufficient_quota", None, "insufficient_quota",
            )
        # Real 429s often carry the delay only in the prose ("Please try again in 6s."):
        # ``openai_retry_after=False`` leaves the header out.
        headers = {"retry-after": str(math.ceil(rejection.retry_delay))} if self._retry_after_header else None
        return openai_error(
            429, f"Rate limit reached for {rejection.model} on requests per min (RPM): "
            f"Limit {rejection.quota_value}. Please try again in {rejection.retry_delay:.1f}s.",
            "requests", None, "rate_limit_exceeded", headers=headers,
        )

    def server_error(self, status: int) -> Response:
        if status == 503:
            return openai_error(503, "The model is overloaded. Please try again later.", "server_error", None, "overloaded")
        return openai_error(500, "The server had an error while processing your request.", "server_error")

    def blocked(self, call: ImageCall, prompt_level: bool) -> Response:
        """gpt-image's refusal (openai_400_moderation_blocked_output_stage.json)."""
        stage = "input" if prompt_level else "output"
        body = {"error": {
            "message": "Your request was rejected by the safety system. If you believe this is an error, contact "
            "us at help.openai.com and include the request ID sim. safety_violations=[sexual].",
            "type": "image_generation_user_error", "param": None, "code": "moderation_blocked",
            "moderation_details": {"moderation_stage": stage, "categories": ["sexual"]},
        }}
        return JSONResponse(body, status_code=400)

    def shaped(self, call: ImageCall, shape: str) -> Response:
        """The wire shapes in OpenAI's dialect: 429s with the delay only in the prose, auth
        errors, capacity as a 503, and a 200 whose ``data`` holds no image."""
        status = ERROR_SHAPES.get(shape)
        if status == 429:
            return openai_error(429, f"Rate limit reached for {call.model.id} on images per minute (IPM): Limit 5, "
                                "Used 5, Requested 1. Please try again in 6s.", "requests", None, "rate_limit_exceeded")
        if status == 401:
            return openai_error(401, "Incorrect API key provided.", "invalid_request_error", None, "invalid_api_key")
        if status == 403:
            return openai_error(403, "You are not allowed to sample from this model", "invalid_request_error")
        if status == 503:
            return openai_error(503, f"No capacity available for model {call.model.id} on the server",
                                "server_error", None, "overloaded")
        return JSONResponse({"created": int(time.time()), "data": []})

    def generated(self, call: ImageCall, outcome: str, final: FinalImage | None) -> Response:
        body: dict[str, Any] = {"created": int(time.time()), "data": []}
        if final is not None:
            body["data"] = [self._image_entry(final, corrupt=outcome == "bad_base64")]
            body["output_format"] = _FORMATS[final.mime_type]
            body["size"] = f"{final.width}x{final.height}"
        usage = usage_for(call, image=final is not None)
        body["usage"] = {
            "input_tokens": usage.prompt,
            "output_tokens": usage.candidates,
            "total_tokens": usage.prompt + usage.candidates,
            "input_tokens_details": {"text_tokens": usage.prompt_text, "image_tokens": usage.prompt_images},
        }
        return JSONResponse(body)

    def _image_entry(self, final: FinalImage, corrupt: bool) -> dict[str, str]:
        if self.response_format == "b64_json":
            return {"b64_json": final.data_b64}
        data = final.data[: len(final.data) // 2] if corrupt else final.data  # a download that does not decode
        return {"url": f"{self._base_url}/_simulator/files/{self._files.put(data, final.mime_type)}"}
