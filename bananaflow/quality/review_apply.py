"""A person's decisions applied to a run's rows and objects.

An approved image that waited under the review prefix is copied to the key it is published
under (``published_key``), its review marker (``landing.review_store``) is deleted, and its row
becomes ``succeeded``: the next run finds the image under the item's key. A rejected one becomes
``rejected``, its marker says so (who, when, the note), and if it was already at its published
key (``--review all``) it moves to the review prefix: no later run finds it there, publishes it
or pays for it again. Each decided row gets the person's verdict appended to its verdicts.
Regeneration is the flow's (or the next run's) job: ``clear_for_remake`` readies an item for it.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import replace

from bananaflow.landing.keys import join_key, normalize_prefix, stem_of
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.review_log import APPROVE, REJECT, Decision
from bananaflow.landing.review_store import ReviewMarker, read_review_marker, review_marker_key, write_review_marker
from bananaflow.landing.storage import ImageStore
from bananaflow.landing.verdict import REJECTED, Verdict

__all__ = [
    "REVIEW_SEGMENT", "apply_decisions", "clear_for_remake", "human_verdict", "is_review_key", "item_stem", "latest_rows",
    "published_key", "review_key",
]

#: The folder under the store's prefix where images wait for a person.
REVIEW_SEGMENT = "review"


def _review_root(prefix: str) -> str:
    return join_key(prefix, REVIEW_SEGMENT) + "/"


def is_review_key(key: str, prefix: str) -> bool:
    return key.startswith(_review_root(prefix))


def published_key(key: str, prefix: str) -> str:
    """Where an image kept under the review prefix is published (the key it would have had)."""
    root = _review_root(prefix)
    return join_key(normalize_prefix(prefix), key[len(root):]) if key.startswith(root) else key


def review_key(key: str, prefix: str) -> str:
    """Where a published image is kept once it waits for (or was refused by) a person."""
    if is_review_key(key, prefix):
        return key
    base = normalize_prefix(prefix)
    rest = key[len(base) + 1:] if base and key.startswith(base + "/") else key
    return join_key(base, REVIEW_SEGMENT, rest)


def human_verdict(decision: Decision) -> Verdict:
    return Verdict(passed=decision.action == APPROVE, stage="human", model=decision.who,
                   note=decision.note or decision.action)


def _with_verdict(row: ManifestRow, verdict: Verdict) -> str:
    try:
        earlier = json.loads(row.verdicts) if row.verdicts else []
    except ValueError:
        earlier = []
    return json.dumps([*earlier, verdict.to_dict()], sort_keys=True)


def _move(store: ImageStore, row: ManifestRow, to: str, prefix: str, *, keep_source: bool) -> ManifestRow:
    """The row's image (and its derivatives) copied to the keys ``to`` maps them to."""
    mapper = published_key if to == "published" else review_key
    moves = {row.key: mapper(row.key, prefix)}
    derivatives = json.loads(row.derivatives) if row.derivatives else {}
    moves |= {k: mapper(k, prefix) for k in derivatives.values()}
    for source, target in moves.items():
        if source != target:
            store.copy(source, target)
            if not keep_source:
                store.delete(source)
    new_key = moves[row.key]
    return replace(row, key=new_key, uri=store.uri(new_key),
                   derivatives=json.dumps({n: moves[k] for n, k in derivatives.items()}, sort_keys=True) if derivatives else "")


def apply_decisions(rows: Iterable[ManifestRow], decisions: Iterable[Decision], store: ImageStore,
                    prefix: str) -> Iterator[ManifestRow]:
    """``rows`` with the approvals and rejections in ``decisions`` done (objects copied or moved)."""
    by_item = {d.item: d for d in decisions if d.action in (APPROVE, REJECT)}
    for row in rows:
        decision = by_item.get((row.sku, row.variant))
        if decision is None or not row.key or (decision.key and decision.key != row.key):
            yield row
            continue
        verdicts = _with_verdict(row, human_verdict(decision))
        stem = item_stem(row, prefix)
        if decision.action == APPROVE:
            moved = _move(store, row, "published", prefix, keep_source=True)
            store.delete(review_marker_key(stem))
            yield replace(moved, status="succeeded", verdicts=verdicts, error_class="", error_message="")
        else:
            moved = _move(store, row, "review", prefix, keep_source=False)
            rejected = replace(moved, status=REJECTED, verdicts=verdicts, error_class="ReviewRejected",
                               error_message=f"rejected by {decision.who}" + (f": {decision.note}" if decision.note else ""))
            _mark_rejected(store, stem, rejected, decision)
            yield rejected


def item_stem(row: ManifestRow, prefix: str) -> str:
    """The item's own key stem (where its published image and its review marker live)."""
    return stem_of(published_key(row.key, prefix))


def _mark_rejected(store: ImageStore, stem: str, row: ManifestRow, decision: Decision) -> None:
    """The item's marker says ``rejected`` (the gate's, kept and amended; else a new one)."""
    marker = read_review_marker(store, stem) if store.exists(review_marker_key(stem)) else None
    if marker is None:
        marker = ReviewMarker(status=REJECTED, key=row.key, mime_type=row.mime_type, run_id=row.run_id,
                              prompt_sha256=row.prompt_sha256, model=row.model, cost_usd=row.cost_usd or 0.0,
                              attempts=row.attempts or 0)
    derivatives = json.loads(row.derivatives) if row.derivatives else {}
    verdicts = tuple(Verdict.from_dict(v) for v in json.loads(row.verdicts)) if row.verdicts else marker.verdicts
    write_review_marker(store, stem, replace(
        marker, status=REJECTED, key=row.key, derivatives=derivatives or marker.derivatives, verdicts=verdicts,
        decided_by=decision.who, decided_at=decision.when, note=decision.note,
    ))


def clear_for_remake(store: ImageStore, row: ManifestRow, prefix: str) -> None:
    """Ready an item to be made again under its own key: its marker goes (or the engine would
    report it waiting and send nothing), and an image already published there (``--review
    all``) moves under the review prefix (or the engine would find it and not make it again)."""
    store.delete(review_marker_key(item_stem(row, prefix)))
    if row.key and not is_review_key(row.key, prefix):
        _move(store, row, "review", prefix, keep_source=False)


def latest_rows(rows: Iterable[ManifestRow]) -> Iterator[ManifestRow]:
    """One row per (SKU, variant): the last one (an image made again after a review), carrying
    the cost and attempts of the rows it replaces, in the order items first appeared."""
    latest: dict[tuple[str, str], ManifestRow] = {}
    for row in rows:
        item = (row.sku, row.variant)
        earlier = latest.get(item)
        if earlier is not None:
            cost = None if earlier.cost_usd is None and row.cost_usd is None else round(
                (earlier.cost_usd or 0.0) + (row.cost_usd or 0.0), 6)
            row = replace(row, cost_usd=cost, attempts=(earlier.attempts or 0) + (row.attempts or 0),
                          verdicts=_joined(earlier.verdicts, row.verdicts))
        latest[item] = row
    yield from latest.values()


def _joined(first: str, second: str) -> str:
    try:
        items = (json.loads(first) if first else []) + (json.loads(second) if second else [])
    except ValueError:
        return second
    return json.dumps(items, sort_keys=True) if items else ""
