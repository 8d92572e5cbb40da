"""Every knob of the simulator, in one frozen dataclass.

The defaults "just work" (no faults, a few milliseconds of latency) so a test only names
the knobs it is about. The config is frozen: live changes go through
``SimulatorServer.configure``, which swaps in a new validated copy, so a request in
progress never sees half of a change.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from bananaflow.testing.simulator.wire_shapes import EMPTY_SHAPES, ERROR_SHAPES

# Outcomes a script may serve (the two safety blocks too, so block handling can be
# tested without word lists; and the recorded shapes of ``wire_shapes``).
SCRIPT_OUTCOMES: frozenset[str] = frozenset(
    {
        "ok",
        "429",
        "429_day",
        "500",
        "503",
        "html_502",
        "slow",
        "truncated_json",
        "no_image",
        "thought_only",
        "wrong_size",
        "off_white",
        "bad_base64",
        "reset",
        "blocked",
        "prompt_blocked",
    }
) | frozenset(ERROR_SHAPES) | EMPTY_SHAPES  # the real services' other shapes (wire_shapes.py)
IMAGE_MIMES: frozenset[str] = frozenset({"image/png", "image/jpeg"})
#: Drafts before the final image: marked ``thought: true``, or (as gemini-3-pro-image sends
#: them) unflagged image parts with a ``thoughtSignature``, of which the last is the answer.
DRAFT_STYLES: frozenset[str] = frozenset({"flagged", "unflagged"})
#: ``usageMetadata`` as sent: all fields; without ``candidatesTokensDetails``; absent; or
#: with ``candidatesTokenCount`` larger than its details (text not itemised).
USAGE_SHAPES: frozenset[str] = frozenset({"full", "no_details", "omitted", "extra_text"})
#: Outcomes a judge call may be scripted to get (``judge_script``): quota and server errors as
#: for images, and the 200s a judge cannot use: ``invalid_json`` (prose, no JSON), ``fenced``
#: (valid JSON in a Markdown fence: usable), ``truncated`` (JSON cut short, finishReason STOP),
#: ``max_tokens`` (cut at the limit), ``blocked`` (finishReason SAFETY), ``prompt_blocked``
#: (promptFeedback.blockReason), ``schema_violation`` (JSON without the checks).
JUDGE_OUTCOMES: frozenset[str] = frozenset({
    "ok", "429", "429_day", "500", "503", "html_502", "reset", "slow", "invalid_json", "fenced", "truncated",
    "max_tokens", "blocked", "prompt_blocked", "schema_violation",
})
# How a Batch-mode job ends once its turnaround has passed.
BATCH_OUTCOMES: frozenset[str] = frozenset({"succeeded", "failed", "expired"})


@dataclass(frozen=True)
class SimulatorConfig:
    """Knobs of one simulator. Sequences are stored as tuples and the script as a
    read-only mapping, so a config can be shared between threads safely."""

    host: str = "127.0.0.1"
    port: int = 0
    latency_s: tuple[float, float] = (0.0, 0.02)  # uniform (min, max) seconds per request
    requests_per_minute: int | None = None
    max_in_flight: int | None = None
    requests_per_day: int | None = None
    quota_zero_models: tuple[str, ...] = ()
    rate_500: float = 0.0
    rate_503: float = 0.0
    blocked_words: tuple[str, ...] = ()
    prompt_blocked_words: tuple[str, ...] = ()
    thought_images: int = 1
    image_mime: str = "image/png"
    api_key: str | None = None
    seed: int = 0
    usage_as_strings: bool = False
    draft_style: str = "flagged"
    usage_shape: str = "full"
    # OpenAI route: send Retry-After with a 429 (real ones often carry only "try again in Ns"),
    # and refuse what real gpt-image refuses (``response_format``, non-standard fields).
    openai_retry_after: bool = True
    openai_strict: bool = False
    script: Mapping[str, Sequence[str]] = field(default_factory=dict)
    script_retry_delay: float = 1.0
    slow_seconds: float = 2.0
    # Batch mode: seconds from create to the end state (pending for the first quarter,
    # then running), and which end state a batch reaches then. Read when a batch is
    # polled, so a test can shorten the turnaround of a batch already created.
    batch_turnaround_s: float = 1.0
    batch_outcome: str = "succeeded"
    # Vertex AI (vertex_routes, oauth): public keys (PEM) whose signed JWT assertions the
    # token endpoint accepts (empty: any well-formed assertion), the tokens' lifetime,
    # projects whose calls get 403 PERMISSION_DENIED, and errors wrapped in a list.
    oauth_public_keys: tuple[str, ...] = ()
    oauth_token_ttl_s: float = 3600.0
    vertex_denied_projects: tuple[str, ...] = ()
    vertex_list_errors: bool = False
    metadata_project: str = "bananaflow-sim"  # the GCE metadata server's project id
    # The quality gate (judge_engine, defects): images whose prompt contains a key carry a visible
    # defect ("once" until the request carries corrections, "always"; ":extra_object" for a hand
    # instead of garbled label text); judge calls get outcomes from their own script (keys match
    # the judge's prompt, which quotes the product's facts; "" matches every call), their own
    # per-minute limit (the judge model has its own quota), and an OpenAI-compatible relay may
    # lack the chat route or the json_schema response format.
    defects: Mapping[str, str] = field(default_factory=dict)
    judge_script: Mapping[str, Sequence[str]] = field(default_factory=dict)
    judge_requests_per_minute: int | None = None
    openai_chat: bool = True
    openai_json_schema: bool = True

    def __post_init__(self) -> None:
        for name in ("quota_zero_models", "blocked_words", "prompt_blocked_words", "oauth_public_keys",
                     "vertex_denied_projects"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise ValueError(f"{name} must be a sequence of strings, not one string")
            object.__setattr__(self, name, tuple(value))
        object.__setattr__(self, "latency_s", tuple(self.latency_s))
        script = {key: tuple(outcomes) for key, outcomes in dict(self.script).items()}
        object.__setattr__(self, "script", MappingProxyType(script))
        judge_script = {key: tuple(outcomes) for key, outcomes in dict(self.judge_script).items()}
        object.__setattr__(self, "judge_script", MappingProxyType(judge_script))
        object.__setattr__(self, "defects", MappingProxyType(dict(self.defects)))
        self._check()

    def _check(self) -> None:
        if len(self.latency_s) != 2 or not 0 <= self.latency_s[0] <= self.latency_s[1]:
            raise ValueError("latency_s must be (min, max) seconds with 0 <= min <= max")
        for name in ("requests_per_minute", "max_in_flight", "requests_per_day"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None (no limit)")
        if not (0 <= self.rate_500 and 0 <= self.rate_503 and self.rate_500 + self.rate_503 <= 1):
            raise ValueError("rate_500 and rate_503 must be >= 0 and add up to at most 1")
        if self.thought_images < 0:
            raise ValueError("thought_images must be >= 0")
        if self.image_mime not in IMAGE_MIMES:
            raise ValueError(f"image_mime must be one of {sorted(IMAGE_MIMES)}")
        if self.draft_style not in DRAFT_STYLES:
            raise ValueError(f"draft_style must be one of {sorted(DRAFT_STYLES)}")
        if self.usage_shape not in USAGE_SHAPES:
            raise ValueError(f"usage_shape must be one of {sorted(USAGE_SHAPES)}")
        if self.batch_turnaround_s < 0:
            raise ValueError("batch_turnaround_s must be >= 0")
        if self.batch_outcome not in BATCH_OUTCOMES:
            raise ValueError(f"batch_outcome must be one of {sorted(BATCH_OUTCOMES)}")
        if self.script_retry_delay < 0 or self.slow_seconds < 0:
            raise ValueError("script_retry_delay and slow_seconds must be >= 0")
        self._check_quality_gate()
        for key, outcomes in self.script.items():
            unknown = set(outcomes) - SCRIPT_OUTCOMES
            if unknown:
                raise ValueError(
                    f"script[{key!r}] has unknown outcomes {sorted(unknown)}; "
                    f"known: {sorted(SCRIPT_OUTCOMES)}"
                )

    def _check_quality_gate(self) -> None:
        from bananaflow.testing.simulator.defects import parse_defect

        for key, value in self.defects.items():
            try:
                parse_defect(value)
            except ValueError as exc:
                raise ValueError(f"defects[{key!r}]: {exc}") from None
        for key, outcomes in self.judge_script.items():
            unknown = set(outcomes) - JUDGE_OUTCOMES
            if unknown:
                raise ValueError(f"judge_script[{key!r}] has unknown outcomes {sorted(unknown)}; "
                                 f"known: {sorted(JUDGE_OUTCOMES)}")
        if self.judge_requests_per_minute is not None and self.judge_requests_per_minute < 1:
            raise ValueError("judge_requests_per_minute must be >= 1 or None (no limit)")

    def with_changes(self, **changes: Any) -> SimulatorConfig:
        """A validated copy with ``changes`` applied; unknown knob names are an error
        rather than silently ignored, so a typo in a test fails loudly."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise TypeError(f"unknown simulator knobs: {sorted(unknown)}")
        return replace(self, **changes)
