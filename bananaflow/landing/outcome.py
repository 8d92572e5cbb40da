"""What happened to one item, as one typed value: the image or the classified error, what
was sent and billed, which route answered, where the image is kept, and whether a later try
may succeed.

The dispatcher returns an ``ItemOutcome`` for every item it sends; the lander adds where the
image is stored; the manifest row is built from it in one place (``ManifestRow.from_outcome``).
Nothing downstream reads an exception's attributes or re-derives retryability from a class
name. The quality gate's verdicts (``verdicts``) sit beside the preset's numbers (``qa``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from bananaflow.errors import BananaflowError, ContentBlocked, ProviderError, error_status, is_retryable
from bananaflow.landing.verdict import Verdict
from bananaflow.providers.base import GeneratedImage, Usage
from bananaflow.secrets import excerpt

#: The longest error message a row keeps.
MESSAGE_CHARS = 500


def utc_now() -> datetime:
    return datetime.now(UTC)


def error_text(error: BaseException) -> str:
    """An error as a row shows it: ours by their (redacted) message, a bug by class and text."""
    return error.message if isinstance(error, BananaflowError) else f"{type(error).__name__}: {error}"


@dataclass(frozen=True, slots=True)
class Charge:
    """One answer the provider billed for this item, and what it was for (``image``,
    ``no-image answer``, ``blocked answer``, ``batch image``, ``regeneration``)."""

    purpose: str
    cost_usd: float
    usage: Usage | None = None


def billed_charge(error: BaseException) -> Charge | None:
    """The charge of a failed answer that was billed all the same (a blocked or image-less
    200 bills prompt and thinking tokens, which the provider priced from its usage)."""
    if not isinstance(error, ProviderError) or not (error.cost_usd or error.usage is not None):
        return None
    purpose = "blocked answer" if isinstance(error, ContentBlocked) else "answer without a usable image"
    usage = error.usage if isinstance(error.usage, Usage) else None
    return Charge(purpose, error.cost_usd, usage)


@dataclass(frozen=True, slots=True)
class StoredImage:
    """Where an item's image is kept, and what it is."""

    key: str
    uri: str
    mime_type: str
    bytes: int | None = None
    width: int | None = None
    height: int | None = None
    #: ``{derivative name: object key}`` stored beside ``key``
    derivatives: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """One item's result. ``status`` is a manifest status word; ``retryable`` says whether
    running the item again in this run (a retried chunk) may succeed."""

    status: str
    started_at: datetime
    latency_s: float | None = None
    attempts: int = 0
    retryable: bool = False
    #: the classified error, when the item did not end with a stored image of its own
    error: BaseException | None = field(default=None, repr=False, compare=False)
    error_class: str = ""
    error_message: str = ""
    charges: tuple[Charge, ...] = ()
    #: the image in hand (between the provider's answer and the store); dropped once landed
    image: GeneratedImage | None = field(default=None, repr=False, compare=False)
    model: str = ""  # the model that answered ("" = the item's own)
    endpoint: str = ""  # the endpoint of the fallback chain that answered
    #: ``time.monotonic()`` of the item's first request: latency counts from there, not the queue
    first_sent_at: float | None = None
    stored: StoredImage | None = None
    mode: str = "realtime"
    batch_name: str = ""
    #: JSON: the output preset's measured numbers (the quality gate's first stage)
    qa: str = ""
    #: the quality gate's verdicts on this item, in order (each image, each regeneration, a person)
    verdicts: tuple[Verdict, ...] = ()
    #: regenerations the quality gate made after failed checks (``attempts`` counts requests)
    qa_attempts: int = 0
    #: usage and cost read back from an object this run stored earlier (a retried chunk)
    recorded_usage: Usage | None = None
    recorded_cost_usd: float | None = None
    finished_at: datetime = field(default_factory=utc_now)

    @classmethod
    def failure(
        cls,
        error: BaseException,
        *,
        started_at: datetime,
        t0: float,
        attempts: int = 0,
        charges: tuple[Charge, ...] = (),
        mode: str = "realtime",
        batch_name: str = "",
        model: str = "",
    ) -> ItemOutcome:
        """An item that ended with ``error``: its status word and retryability come from
        the error's class, its message is the error's (redacted) message."""
        status = error_status(error)
        message = error_text(error)
        return cls(
            status=status,
            started_at=started_at,
            latency_s=round(time.monotonic() - t0, 3),
            attempts=attempts,
            retryable=status == "failed" and is_retryable(error),
            error=error,
            error_class=type(error).__name__,
            error_message=excerpt(message, MESSAGE_CHARS),
            charges=charges,
            mode=mode,
            batch_name=batch_name,
            model=model,
        )

    @property
    def cost_usd(self) -> float:
        """All the item cost: every billed answer, earlier attempts and regenerations too."""
        if self.recorded_cost_usd is not None:
            return self.recorded_cost_usd
        return round(sum(c.cost_usd for c in self.charges), 6)

    @property
    def usage(self) -> Usage | None:
        """Tokens of the answer that made the image (or, with none, of the last billed one)."""
        if self.recorded_usage is not None:
            return self.recorded_usage
        if self.image is not None:
            return self.image.usage
        billed = [c.usage for c in self.charges if c.usage is not None]
        return billed[-1] if billed else None

    @property
    def judge_cost_usd(self) -> float:
        """What the quality gate's judge calls cost (part of ``cost_usd``)."""
        return round(sum(c.cost_usd for c in self.charges if c.purpose == "judge"), 6)

    @property
    def qa_reasons(self) -> str:
        """Why the last failed verdict failed (``check: reason; ...``), or ""."""
        failed = [v for v in self.verdicts if not v.passed]
        return "; ".join(failed[-1].reasons) if failed else ""

    @property
    def blocked(self) -> ContentBlocked | None:
        return self.error if isinstance(self.error, ContentBlocked) else None

    def with_error(self, error: BaseException, *, status: str | None = None, message: str | None = None) -> ItemOutcome:
        """The same outcome ended by ``error`` (the image, if any, is kept for the store)."""
        return replace(
            self,
            status=status or error_status(error),
            error=error,
            error_class=type(error).__name__,
            error_message=excerpt(message if message is not None else error_text(error), MESSAGE_CHARS),
            retryable=False,
            finished_at=utc_now(),
        )

    def landed(self, stored: StoredImage) -> ItemOutcome:
        """The image is in the store: keep where, drop the bytes."""
        return replace(self, stored=stored, image=None, finished_at=utc_now())
