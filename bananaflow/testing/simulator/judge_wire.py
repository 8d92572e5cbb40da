"""Reading a judge request: a ``generateContent`` body with a response schema, or a chat completion.

A judge call shares its route with image calls (AI Studio's and Vertex's ``generateContent``), so
it is told apart by its body: a ``responseSchema`` / ``responseJsonSchema``, or
``responseMimeType: application/json`` without an IMAGE modality. The body is checked as
strictly as an image request (unknown fields are a 400), and a schema without the JSON mime type
is refused as Google does. Chat completions are read the way OpenAI's front end reads them.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from bananaflow.errors import ConfigurationError
from bananaflow.quality.judge_models import JudgeModelSpec, get_judge_model
from bananaflow.testing.simulator.calls import WireError
from bananaflow.testing.simulator.gemini_wire import REQUEST_SCHEMA, normalize

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)$", re.DOTALL)
_CHAT_FIELDS = frozenset({
    "model", "messages", "response_format", "max_tokens", "max_completion_tokens", "n", "temperature", "top_p",
    "stream", "stop", "seed", "user", "reasoning_effort", "presence_penalty", "frequency_penalty", "logprobs",
    "top_logprobs", "tools", "tool_choice", "metadata", "store", "stream_options", "modalities", "parallel_tool_calls",
    "logit_bias", "service_tier", "prediction", "audio", "web_search_options", "safety_identifier",
})


@dataclass(frozen=True)
class JudgeCall:
    """A judge request, whatever its wire: the text, the images in order, the schema asked for."""

    model: JudgeModelSpec
    prompt: str
    images: tuple[bytes, ...]
    schema: dict[str, Any] | None  # None: JSON without a schema (json_object), or plain text
    dialect: str  # "openapi" (Gemini responseSchema) or "jsonschema"
    wants_json: bool = True
    include_thoughts: bool = False


def _gen_config(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {}
    config = raw.get("generationConfig", raw.get("generation_config"))
    return config if isinstance(config, dict) else {}


def is_judge_body(body: bytes) -> bool:
    """Whether a ``generateContent`` body asks for a JSON answer rather than an image."""
    try:
        raw = json.loads(body)
    except ValueError:
        return False
    config = _gen_config(raw)
    if any(key in config for key in ("responseSchema", "response_schema", "responseJsonSchema", "response_json_schema")):
        return True
    mime = config.get("responseMimeType", config.get("response_mime_type"))
    modalities = config.get("responseModalities", config.get("response_modalities")) or []
    return mime == "application/json" and "IMAGE" not in modalities


def judge_model(model_id: str, not_found: str) -> JudgeModelSpec:
    """The judge model's spec, or a 404 with ``not_found`` (the route's own wording)."""
    try:
        return get_judge_model(model_id)
    except ConfigurationError:
        raise WireError(404, not_found) from None


def _b64(data: Any, field: str) -> bytes:
    try:
        if not isinstance(data, str) or not data:
            raise ValueError("empty")
        return base64.b64decode(data.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise WireError(400, f"Invalid value at '{field}' (TYPE_BYTES), Base64 decoding failed.", field) from None


def parse_gemini_judge(spec: JudgeModelSpec, body: bytes) -> JudgeCall:
    """A ``generateContent`` judge body as a ``JudgeCall`` (400 for what Google refuses)."""
    try:
        raw = json.loads(body)
    except ValueError:
        raise WireError(400, "Invalid JSON payload received. Unexpected token.") from None
    request = normalize(raw, REQUEST_SCHEMA)
    texts: list[str] = []
    images: list[bytes] = []
    for i, content in enumerate(request.get("contents") or ()):
        for j, part in enumerate(content.get("parts", [])):
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            if "inlineData" in part:
                images.append(_b64(part["inlineData"].get("data"), f"contents[{i}].parts[{j}].inline_data.data"))
    if not request.get("contents"):
        raise WireError(400, "* GenerateContentRequest.contents: contents is not specified", "contents")
    config = request.get("generationConfig", {})
    mime = config.get("responseMimeType", "text/plain")
    schema, dialect = config.get("responseSchema"), "openapi"
    if config.get("responseJsonSchema") is not None:
        if schema is not None:
            raise WireError(400, "responseSchema and responseJsonSchema cannot both be set.",
                            "generation_config.response_json_schema")
        schema, dialect = config["responseJsonSchema"], "jsonschema"
    if schema is not None and mime not in ("application/json", "text/x.enum"):
        raise WireError(400, "* GenerateContentRequest.generation_config.response_mime_type: response_mime_type must "
                             "be application/json or text/x.enum when response_schema is set.",
                        "generation_config.response_mime_type")
    if schema is not None and not isinstance(schema, dict):
        raise WireError(400, "Invalid value at 'generation_config.response_schema': expected an object.",
                        "generation_config.response_schema")
    thinking = config.get("thinkingConfig") or {}
    return JudgeCall(spec, "\n".join(texts), tuple(images), schema, dialect, mime == "application/json",
                     bool(thinking.get("includeThoughts")))


def _chat_content(messages: Any) -> tuple[str, list[bytes]]:
    if not isinstance(messages, list) or not messages:
        raise WireError(400, "Missing required parameter: 'messages'.", "messages")
    texts: list[str] = []
    images: list[bytes] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("system", "developer", "user", "assistant"):
            raise WireError(400, f"Invalid value for 'messages[{i}].role'.", f"messages[{i}].role")
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        for j, part in enumerate(content if isinstance(content, list) else ()):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                texts.append(str(part.get("text", "")))
            elif kind == "image_url":
                url = (part.get("image_url") or {}).get("url", "")
                match = _DATA_URL.match(url) if isinstance(url, str) else None
                if match is None:
                    raise WireError(400, "Invalid image URL: the simulator takes data: URLs only.",
                                    f"messages[{i}].content[{j}].image_url.url")
                images.append(_b64(match.group("data"), f"messages[{i}].content[{j}].image_url.url"))
            else:
                raise WireError(400, f"Invalid content part type {kind!r}.", f"messages[{i}].content[{j}].type")
    return "\n".join(texts), images


def parse_chat_judge(body: bytes, *, json_schema_supported: bool = True) -> JudgeCall:
    """A chat-completions body as a ``JudgeCall``; OpenAI's 400s for unknown arguments and a
    relay's for a ``json_schema`` response format it does not support."""
    try:
        raw = json.loads(body)
    except ValueError:
        raise WireError(400, "We could not parse the JSON body of your request.") from None
    if not isinstance(raw, dict):
        raise WireError(400, "The request body must be a JSON object.")
    unknown = sorted(set(raw) - _CHAT_FIELDS)
    if unknown:
        raise WireError(400, f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])
    if raw.get("stream"):
        raise WireError(400, "The simulator does not stream chat completions.", "stream")
    model_id = str(raw.get("model") or "")
    spec = judge_model(model_id, f"The model `{model_id}` does not exist or you do not have access to it.")
    prompt, images = _chat_content(raw.get("messages"))
    fmt = raw.get("response_format") or {"type": "text"}
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_schema":
        if not json_schema_supported:
            raise WireError(400, "Invalid parameter: 'response_format' of type 'json_schema' is not supported with "
                                 "this model.", "response_format")
        spec_obj = fmt.get("json_schema")
        spec_obj = spec_obj if isinstance(spec_obj, dict) else {}
        schema = spec_obj.get("schema")
        if not isinstance(schema, dict) or not isinstance(spec_obj.get("name"), str):
            raise WireError(400, "Missing required parameter: 'response_format.json_schema.name' or '.schema'.",
                            "response_format.json_schema")
        return JudgeCall(spec, prompt, tuple(images), schema, "jsonschema", True)
    if kind in ("json_object", "text"):
        return JudgeCall(spec, prompt, tuple(images), None, "jsonschema", kind == "json_object")
    raise WireError(400, f"Invalid value: {kind!r}. Supported values are: 'json_object', 'json_schema' and 'text'.",
                    "response_format.type")
