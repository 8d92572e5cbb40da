"""People's decisions on a run's images, kept in the bucket so the next run knows them.

Each review (a resumed pause, or ``bananaflow review`` on a finished run) writes one JSON Lines
object ``<prefix>/review/decisions/<UTC stamp>-<run>.jsonl``: one line per image decided, with
who decided (what Prefect or the shell knows), when, what, the note, and what the judge had
said of that image (for the agreement figures). The stamp sorts by time, so the newest
decision on an item is the last one read.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from bananaflow.landing.keys import join_key, sanitize_sku
from bananaflow.landing.storage import ImageStore

__all__ = [
    "ACTIONS", "APPROVE", "REGENERATE", "REJECT", "Decision", "decisions_prefix", "latest_by_item", "load_decisions",
    "save_decisions",
]

APPROVE, REJECT, REGENERATE = "approve", "reject", "regenerate"
ACTIONS = (APPROVE, REJECT, REGENERATE)


@dataclass(frozen=True, slots=True)
class Decision:
    """One person's decision on one image of one run."""

    run: str  # the flow run's name (its manifest folder ends with it)
    sku: str
    variant: str
    action: str  # approve, reject or regenerate
    who: str
    when: str  # ISO 8601, UTC
    note: str = ""
    key: str = ""  # the image decided on
    prompt_sha256: str = ""  # the request it was made from: a changed row is a new item
    judge_passed: bool | None = None  # the judge's last verdict on that image (None: not judged)
    failed_checks: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"review decision {self.action!r} is not one of {', '.join(ACTIONS)}")

    @property
    def item(self) -> tuple[str, str]:
        return self.sku, self.variant

    @property
    def overrules_judge(self) -> bool:
        """Approved what the judge failed, or rejected what it passed."""
        return (self.action == APPROVE and self.judge_passed is False) or (self.action == REJECT and self.judge_passed is True)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "failed_checks": list(self.failed_checks)}, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> Decision:
        data = json.loads(line)
        passed = data.get("judge_passed")
        return cls(
            run=str(data.get("run", "")), sku=str(data["sku"]), variant=str(data.get("variant", "")),
            action=str(data["action"]), who=str(data.get("who", "")), when=str(data.get("when", "")),
            note=str(data.get("note", "")), key=str(data.get("key", "")), prompt_sha256=str(data.get("prompt_sha256", "")),
            judge_passed=None if passed is None else bool(passed),
            failed_checks=tuple(str(c) for c in data.get("failed_checks") or ()),
        )


def decisions_prefix(prefix: str) -> str:
    return join_key(prefix, "review", "decisions") + "/"


def save_decisions(store: ImageStore, prefix: str, run: str, decisions: Sequence[Decision]) -> str | None:
    """Write one review's decisions; returns the object's URI (None when there were none)."""
    if not decisions:
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    key = decisions_prefix(prefix) + f"{stamp}-{sanitize_sku(run)}.jsonl"
    store.put_bytes(key, "".join(d.to_json() + "\n" for d in decisions).encode("utf-8"), "application/x-ndjson")
    return store.uri(key)


def load_decisions(store: ImageStore, prefix: str, *, reviews: int | None = None) -> list[Decision]:
    """Every decision recorded under ``prefix`` (the newest ``reviews`` reviews' only, when
    given), oldest first."""
    keys = [k for k in store.list_keys(decisions_prefix(prefix)) if k.endswith(".jsonl")]
    if reviews is not None:
        keys = keys[-reviews:] if reviews > 0 else []
    found: list[Decision] = []
    for key in keys:
        text = store.get_bytes(key).decode("utf-8", errors="replace")
        found += [Decision.from_json(line) for line in text.splitlines() if line.strip()]
    return found


def latest_by_item(decisions: Iterable[Decision]) -> dict[tuple[str, str], Decision]:
    """The newest decision on each (SKU, variant): what a delta run goes by."""
    latest: dict[tuple[str, str], Decision] = {}
    for decision in decisions:
        latest[decision.item] = decision
    return latest
