"""Answers as the real services send them, beyond the idealised envelope.

Each shape here is one recorded (or, where no recording exists, documented) body of the wire
corpus in ``tests/fixtures/wire/`` (file named next to it), so code tested against the
simulator meets what production meets: 429s without details, Vertex's list-wrapped bodies,
capacity errors, 401/403, block and no-image answers with a ``finishMessage``. A fault
script serves them by name (``script={"SKU-7": ["429_no_details", "ok"]}``).
"""
from __future__ import annotations

from typing import Any

#: Error shapes a script may name, and the HTTP status each is sent with.
ERROR_SHAPES: dict[str, int] = {
    "429_no_details": 429,  # gemini_429_no_details_resource_exhausted.json
    "429_list": 429,  # vertex_429_list_wrapped.json
    "429_capacity": 429,  # gemini_429_model_capacity_exhausted_list_wrapped.json
    "429_per_day_text": 429,  # modelled_vertex_429_per_day_message_only.json
    "503_capacity": 503,  # gemini_503_model_capacity_exhausted_retryinfo.json
    "401": 401,  # vertex_401_unauthenticated_credentials_missing.json
    "403": 403,  # modelled_vertex_403_permission_denied.json
}
#: 200 answers without an image a script may name.
EMPTY_SHAPES = frozenset({"image_other", "parts_null", "content_empty", "image_prohibited"})

IMAGE_OTHER_MESSAGE = (
    "Unable to show the generated image. The model could not generate the image based on the "
    "prompt provided. Try rephrasing the prompt."
)
PROHIBITED_MESSAGE = (
    "The model output could not be generated. This output contains sensitive words that violate "
    "Google's Responsible AI practices. If you think this was an error, send feedback."
)


def google_error_body(shape: str, model: str) -> Any:
    """The JSON body of an error shape (a list for Vertex's wrapped ones)."""
    if shape == "429_no_details":
        return {"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                          "status": "RESOURCE_EXHAUSTED"}}
    if shape == "429_list":
        return [{"error": {"code": 429, "message": "Resource exhausted. Please try again later. Please refer to "
                           "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.",
                           "status": "RESOURCE_EXHAUSTED"}}]
    if shape == "429_per_day_text":
        return {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message":
                          "Quota exceeded for quota metric 'Generate Content API requests per day' and limit "
                          "'GenerateContent request limit per day for a region' of service "
                          "'aiplatform.googleapis.com' for consumer 'project_number:123456789'."}}
    if shape in ("429_capacity", "503_capacity"):
        code = ERROR_SHAPES[shape]
        error: dict[str, Any] = {
            "code": code, "message": f"No capacity available for model {model} on the server",
            "status": "RESOURCE_EXHAUSTED" if code == 429 else "UNAVAILABLE",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "MODEL_CAPACITY_EXHAUSTED",
                         "domain": "cloudcode-pa.googleapis.com", "metadata": {"model": model}}],
        }
        if code == 503:
            error["details"].append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"})
            return {"error": error}
        return [{"error": error}]
    if shape == "401":
        return {"error": {"code": 401, "status": "UNAUTHENTICATED", "message":
                          "API keys are not supported by this API. Expected OAuth2 access token or other "
                          "authentication credentials that assert a principal.",
                          "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                       "reason": "CREDENTIALS_MISSING", "domain": "googleapis.com",
                                       "metadata": {"service": "aiplatform.googleapis.com"}}]}}
    if shape == "403":
        return {"error": {"code": 403, "status": "PERMISSION_DENIED", "message":
                          f"Permission 'aiplatform.endpoints.predict' denied on resource "
                          f"'//aiplatform.googleapis.com/projects/p/locations/global/publishers/google/models/{model}' "
                          "(or it may not exist).",
                          "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                       "reason": "IAM_PERMISSION_DENIED", "domain": "aiplatform.googleapis.com"}]}}
    raise ValueError(f"unknown error shape {shape!r}")


def empty_candidate(shape: str) -> dict[str, Any]:
    """The candidate of a 200 without an image: IMAGE_OTHER with its finishMessage, NO_IMAGE
    with ``parts: null``, SAFETY with ``content: {}``, IMAGE_PROHIBITED_CONTENT without parts."""
    if shape == "image_other":
        return {"content": {"role": "model"}, "finishReason": "IMAGE_OTHER", "finishMessage": IMAGE_OTHER_MESSAGE,
                "index": 0}
    if shape == "parts_null":
        return {"content": {"role": "model", "parts": None}, "finishReason": "NO_IMAGE", "index": 0}
    if shape == "content_empty":
        return {"content": {}, "finishReason": "SAFETY", "index": 0}
    if shape == "image_prohibited":
        return {"content": {"role": "model"}, "finishReason": "IMAGE_PROHIBITED_CONTENT",
                "finishMessage": PROHIBITED_MESSAGE}
    raise ValueError(f"unknown empty shape {shape!r}")
