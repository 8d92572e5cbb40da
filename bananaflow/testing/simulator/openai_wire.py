"""Reading an OpenAI-style ``images/generations`` body.

Relays (and Google's compatibility layer) take OpenAI's shape, which has no field for
aspect ratio or 1K/2K/4K: ``size`` "WxH" is mapped to the nearest ratio the model
accepts, and the non-standard ``aspect_ratio`` / ``image_size`` fields win when present.
Unknown parameters are refused as OpenAI does, so client typos surface in tests.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from bananaflow.errors import ConfigurationError
from bananaflow.providers.models import ModelSpec, default_model_id, get_model
from bananaflow.testing.simulator.calls import ImageCall, WireError

RESPONSE_FORMATS = ("b64_json", "url")
_KNOWN = frozenset({
    "model", "prompt", "n", "size", "response_format", "quality", "style", "user", "background",
    "moderation", "output_format", "output_compression", "safety_identifier", "stream",
    "aspect_ratio", "image_size",
})
#: What real gpt-image-1 refuses with ``400 unknown_parameter`` (openai_400_unknown_parameter_
#: response_format.json): strict mode refuses them too, so a request shape a strict relay
#: would refuse fails in tests rather than in production.
STRICT_REFUSED = ("response_format", "aspect_ratio", "image_size", "style")
_SIZE = re.compile(r"^(\d+)x(\d+)$")


@dataclass(frozen=True)
class OpenAIImageRequest:
    call: ImageCall
    response_format: str


def _ratio_value(ratio: str) -> float:
    width, height = ratio.split(":")
    return int(width) / int(height)


def nearest_ratio(spec: ModelSpec, width: int, height: int) -> str:
    """The model's aspect ratio closest to ``width``/``height`` (compared in log space,
    so 2:1 and 1:2 are equally far from 1:1)."""
    target = math.log(width / height)
    return min(spec.aspect_ratios, key=lambda r: abs(math.log(_ratio_value(r)) - target))


def _model(body: dict[str, Any]) -> ModelSpec:
    model_id = body.get("model") or default_model_id()
    try:
        return get_model(str(model_id))
    except ConfigurationError:
        raise WireError(404, f"The model `{model_id}` does not exist or you do not have access to it.", "model") from None


def _ratio_from_size(spec: ModelSpec, size: Any) -> str:
    if size in (None, "auto"):
        return "1:1"
    match = _SIZE.match(size) if isinstance(size, str) else None
    if match is None or 0 in (int(match.group(1)), int(match.group(2))):
        raise WireError(400, f"Invalid value: {size!r}. Expected 'auto' or 'WIDTHxHEIGHT', e.g. '1024x1024'.", "size")
    return nearest_ratio(spec, int(match.group(1)), int(match.group(2)))


def _check_scalars(body: dict[str, Any], strict: bool = False) -> str:
    unknown = sorted(set(body) - _KNOWN)
    if strict:
        unknown = sorted({*unknown, *(name for name in STRICT_REFUSED if name in body)})
    if unknown:
        raise WireError(400, f"Unknown parameter: '{unknown[0]}'.", unknown[0])
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise WireError(400, "Missing required parameter: 'prompt'.", "prompt")
    if body.get("stream"):
        raise WireError(400, "Streaming is not supported for this model.", "stream")
    n = body.get("n", 1)
    if n != 1 and n is not None:
        raise WireError(400, f"Invalid 'n': {n!r}. This model generates one image per request; n must be 1.", "n")
    response_format = body.get("response_format") or "b64_json"
    if response_format not in RESPONSE_FORMATS:
        raise WireError(
            400, f"Invalid value: {response_format!r}. Supported values are: 'b64_json' and 'url'.", "response_format"
        )
    return str(response_format)


def parse_images_request(raw_body: bytes, *, strict: bool = False) -> OpenAIImageRequest:
    """Validate the body and reduce it to an ``ImageCall`` plus the response format;
    ``strict`` refuses what real gpt-image refuses (``STRICT_REFUSED``)."""
    try:
        body = json.loads(raw_body)
    except ValueError:
        raise WireError(400, "We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise WireError(400, "The request body must be a JSON object.")
    response_format = _check_scalars(body, strict)
    spec = _model(body)
    ratio = body.get("aspect_ratio") or _ratio_from_size(spec, body.get("size"))
    size = body.get("image_size") or spec.default_size
    if not isinstance(ratio, str) or not isinstance(size, str):
        raise WireError(400, "'aspect_ratio' and 'image_size' must be strings.", "aspect_ratio")
    try:
        spec.validate(ratio, size)
    except ConfigurationError as exc:
        field = "aspect_ratio" if ratio not in spec.aspect_ratios else "image_size"
        raise WireError(400, exc.message, field) from None
    return OpenAIImageRequest(ImageCall(spec, body["prompt"], ratio, size), response_format)
