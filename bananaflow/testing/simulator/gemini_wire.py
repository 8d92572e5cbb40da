"""Reading a ``generateContent`` body the way Google's front end does.

The real server accepts camelCase and snake_case names but refuses unknown or misplaced
fields with a 400 (``aspectRatio`` directly under ``generationConfig`` is the classic
client bug). A lenient simulator would let such bugs reach production, so the body is
checked against the subset of the schema an image request can use.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from bananaflow.errors import ConfigurationError
from bananaflow.providers.models import ModelSpec, get_model
from bananaflow.testing.simulator.calls import ImageCall, WireError

# A schema is a dict of camelCase field -> sub-schema; None accepts any JSON value and a
# one-element list means "a list of objects of this schema".
Schema = dict[str, Any]

_BLOB: Schema = {"mimeType": None, "data": None, "displayName": None}
_PART: Schema = {
    "text": None,
    "inlineData": _BLOB,
    "fileData": {"mimeType": None, "fileUri": None, "displayName": None},
    "thought": None,
    "thoughtSignature": None,
    "mediaResolution": None,
    "partMetadata": None,
}
_CONTENT: Schema = {"role": None, "parts": [_PART]}
_GENERATION_CONFIG: Schema = {
    "responseModalities": None,
    "imageConfig": {"aspectRatio": None, "imageSize": None},
    "candidateCount": None,
    "temperature": None,
    "topP": None,
    "topK": None,
    "seed": None,
    "maxOutputTokens": None,
    "stopSequences": None,
    "presencePenalty": None,
    "frequencyPenalty": None,
    "responseMimeType": None,
    "responseSchema": None,  # the quality gate's judge (judge_wire): any schema, read there
    "responseJsonSchema": None,
    "thinkingConfig": {"includeThoughts": None, "thinkingBudget": None, "thinkingLevel": None},
    "mediaResolution": None,
}
_REQUEST: Schema = {
    "contents": [_CONTENT],
    "generationConfig": _GENERATION_CONFIG,
    "systemInstruction": _CONTENT,
    "safetySettings": [{"category": None, "threshold": None, "method": None}],
    "tools": None,
    "toolConfig": None,
    "cachedContent": None,
}
MODALITIES = frozenset({"TEXT", "IMAGE"})
_CAMEL_SPLIT = re.compile(r"_([a-z0-9])")
_SNAKE_SPLIT = re.compile(r"(?<!^)(?=[A-Z])")


def _camel(name: str) -> str:
    return _CAMEL_SPLIT.sub(lambda m: m.group(1).upper(), name)


def _snake(name: str) -> str:
    return _SNAKE_SPLIT.sub("_", name).lower()


def _invalid(message: str, field: str | None = None) -> WireError:
    return WireError(400, message, field)


REQUEST_SCHEMA: Schema = _REQUEST


def normalize(value: Any, schema: Schema, path: str = "") -> dict[str, Any]:
    """``value`` with every known name in camelCase; unknown names are a 400 that names
    the field and where it was found, in Google's words."""
    if not isinstance(value, dict):
        raise _invalid(f"Invalid JSON payload received. Expected an object at '{path or 'request'}'.", path or None)
    out: dict[str, Any] = {}
    for key, item in value.items():
        if item is None:  # proto3 JSON: null means "not set"
            continue
        name = _camel(key)
        where = f" at '{path}'" if path else ""
        if name not in schema:
            raise _invalid(f'Invalid JSON payload received. Unknown name "{key}"{where}: Cannot find field.', path or None)
        if name in out:
            raise _invalid(f'Invalid JSON payload received. Duplicate field "{key}"{where}.', path or None)
        sub, child = schema[name], f"{path}.{_snake(name)}" if path else _snake(name)
        if isinstance(sub, list):
            if not isinstance(item, list):
                raise _invalid(f"Invalid JSON payload received. Expected a list at '{child}'.", child)
            out[name] = [normalize(element, sub[0], f"{child}[{i}]") for i, element in enumerate(item)]
        elif isinstance(sub, dict):
            out[name] = normalize(item, sub, child)
        else:
            out[name] = item
    return out


def lookup_model(model_id: str, api_version: str) -> ModelSpec:
    """The model's spec, or Google's 404 for an unknown or retired id."""
    try:
        return get_model(model_id)
    except ConfigurationError:
        raise WireError(
            404,
            f"models/{model_id} is not found for API version {api_version}, or is not supported "
            "for generateContent. Call ListModels to see the list of available models and their "
            "supported methods.",
        ) from None


def _decode_reference(blob: dict[str, Any], field: str) -> None:
    data = blob.get("data")
    try:
        if not isinstance(data, str) or not data:
            raise ValueError("empty")
        base64.b64decode(data.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"Invalid value at '{field}' (TYPE_BYTES), Base64 decoding failed.", field) from None


def _read_contents(body: dict[str, Any]) -> tuple[str, int]:
    """The prompt (all text parts, in order) and the number of reference images."""
    contents = body.get("contents")
    if not contents:
        raise _invalid("* GenerateContentRequest.contents: contents is not specified", "contents")
    texts: list[str] = []
    images = 0
    for i, content in enumerate(contents):
        for j, part in enumerate(content.get("parts", [])):
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            if "inlineData" in part:
                _decode_reference(part["inlineData"], f"contents[{i}].parts[{j}].inline_data.data")
                images += 1
            if "fileData" in part:
                images += 1
    return "\n".join(texts), images


def _read_modalities(config: dict[str, Any]) -> bool:
    """Whether the caller asked for an image (the default when modalities are absent)."""
    modalities = config.get("responseModalities")
    if modalities is None:
        return True
    if not isinstance(modalities, list) or any(m not in MODALITIES for m in modalities):
        raise _invalid(
            f"Invalid value at 'generation_config.response_modalities', {modalities!r}: "
            f"expected a list of {sorted(MODALITIES)}",
            "generation_config.response_modalities",
        )
    return "IMAGE" in modalities


def _read_image_config(spec: ModelSpec, config: dict[str, Any]) -> tuple[str, str]:
    image_config = config.get("imageConfig", {})
    ratio = image_config.get("aspectRatio", "1:1")
    field = "generation_config.image_config.image_size"
    if "imageSize" in image_config and not spec.sends_image_size:
        raise _invalid(f"* GenerateContentRequest.{field}: image size is not supported by {spec.id}.", field)
    size = image_config.get("imageSize", spec.default_size)
    if not isinstance(ratio, str) or not isinstance(size, str):
        raise _invalid("* GenerateContentRequest.generation_config.image_config: values must be strings.",
                       "generation_config.image_config")
    try:
        spec.validate(ratio, size)
    except ConfigurationError as exc:
        if ratio not in spec.aspect_ratios:
            field = "generation_config.image_config.aspect_ratio"
        raise _invalid(f"* GenerateContentRequest.{field}: {exc.message}", field) from None
    return ratio, size


def _check_candidate_count(config: dict[str, Any]) -> None:
    count = config.get("candidateCount", 1)
    field = "generation_config.candidate_count"
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise _invalid(f"Invalid value at '{field}' (TYPE_INT32), {count!r}", field)
    if count > 1:
        raise _invalid("Multiple candidates is not enabled for this model", field)


def parse_generate_content(spec: ModelSpec, raw: Any) -> ImageCall:
    """Validate a ``generateContent`` body for ``spec`` and reduce it to an ``ImageCall``."""
    body = normalize(raw, _REQUEST)
    prompt, references = _read_contents(body)
    if references > spec.max_reference_images:
        raise _invalid(
            f"* GenerateContentRequest.contents: at most {spec.max_reference_images} images are "
            f"supported by {spec.id}, got {references}.",
            "contents",
        )
    config = body.get("generationConfig", {})
    wants_image = _read_modalities(config)
    _check_candidate_count(config)
    ratio, size = _read_image_config(spec, config)
    return ImageCall(spec, prompt, ratio, size, references, wants_image)


def parse_generate_content_body(spec: ModelSpec, body: bytes) -> ImageCall:
    """``parse_generate_content`` of a raw request body; bad JSON is Google's 400."""
    try:
        raw = json.loads(body)
    except ValueError:
        raise WireError(400, "Invalid JSON payload received. Unexpected token.") from None
    return parse_generate_content(spec, raw)
