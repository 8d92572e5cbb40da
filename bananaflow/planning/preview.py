"""``bananaflow prompts``: what a job would generate and cost, without calling any API.

Templates are code that runs on data nobody reviewed; the cheapest place to find out that
``{{ color }}`` is empty for half the catalog, or that the kitchen override never matches,
is before paying for 30,000 images. This renders every prompt exactly as a run would (same
planner, same keys) and prices the work at list price.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from bananaflow.catalog.loader import CatalogRead
from bananaflow.errors import ConfigurationError
from bananaflow.options import CatalogOptions
from bananaflow.planning.jobspec import Job
from bananaflow.planning.plan import open_catalog_for, stream_items
from bananaflow.planning.work import WorkItem
from bananaflow.planning.work_store import WorkStore
from bananaflow.providers.models import get_model


@dataclass
class Preview:
    """What ``prompts`` prints: the first prompts and the counts of all of them (a catalog of
    a million rows is counted as it streams, never held)."""

    catalog: CatalogRead
    shown: list[WorkItem]
    planned: int = 0
    products: int = 0
    unchanged: int = 0
    per_variant: dict[str, int] = field(default_factory=dict)
    cost_usd: float = 0.0

    @property
    def to_generate(self) -> int:
        return self.planned - self.unchanged


def preview(
    catalog: str,
    job: Job,
    *,
    prefix: str = "bananaflow",
    reading: CatalogOptions | None = None,
    bucket: str | None = None,
    limit: int = 20,
    observe: Callable[[WorkItem], None] | None = None,
) -> Preview:
    """Plan ``job`` over ``catalog`` with the run's streaming planner (``planning.plan``),
    keeping the first ``limit`` prompts; the cost counts only what would be generated (items
    unchanged since ``reading.previous_manifest`` are free: found as the run finds them, in a
    ``WorkStore`` on disk)."""
    from bananaflow.planning.delta import LATEST, previous_rows, resolve_previous

    reading = reading or CatalogOptions()
    store = None
    if reading.previous_manifest == LATEST:
        if not bucket:
            raise ConfigurationError("--previous-manifest latest needs --bucket (where the earlier runs are)")
        from bananaflow.landing.destination import open_store

        store = open_store(bucket)
    previous = resolve_previous(reading.previous_manifest, store, prefix)
    stream = open_catalog_for(catalog, reading)
    result = Preview(catalog=stream, shown=[])
    per_variant: Counter[str] = Counter()
    order: dict[str, None] = {}  # variants as planned: the order the summary names them in
    cost = 0.0

    def counted(items: Iterator[WorkItem]) -> Iterator[WorkItem]:
        for item in items:
            result.planned += 1
            order.setdefault(item.variant, None)
            if len(result.shown) < limit:
                result.shown.append(item)
            if observe is not None:
                observe(item)
            yield item

    items = counted(stream_items(stream, job, prefix))
    if not previous:
        for item in items:
            per_variant[item.variant] += 1
            cost += get_model(item.model).list_price(item.image_size)
    else:
        work = WorkStore()
        try:
            work.add(items)
            result.unchanged = sum(len(batch) for batch in work.drop_unchanged(previous_rows(previous),
                                                                                lambda row, _item: row))
            for wave in work.waves():
                for item in work.in_wave(wave):
                    per_variant[item.variant] += 1
                    cost += get_model(item.model).list_price(item.image_size)
        finally:
            work.close()
    result.products = stream.accepted
    result.per_variant = {variant: per_variant[variant] for variant in order if per_variant[variant]}
    result.cost_usd = round(cost, 4)
    return result


def format_preview(result: Preview, *, limit: int = 20, rejections: int = 10) -> str:
    """Plain text: rendered prompts (first ``limit``), then counts, the first ``rejections``
    rejected rows, skipped products and list-price cost."""
    lines = []
    for item in result.shown[:limit]:
        extras = []
        if item.output_preset:
            extras.append(f"preset {item.output_preset}")
        if item.reference_links or item.group_reference_stem:
            n = len(item.reference_links) + (1 if item.group_reference_stem else 0)
            extras.append(f"{n} reference photo{'s' if n != 1 else ''}")
        meta = ", ".join([item.model, item.aspect_ratio, item.image_size, f"template {item.template}", *extras])
        lines.append(f"row {item.row_number} · {item.sku} · {item.variant} ({meta})")
        lines.append(f"  {item.prompt}")
    if result.planned > limit:
        lines.append(f"… and {result.planned - limit} more prompts (--limit to show more)")
    products = result.products
    lines.append("")
    lines.append(
        f"{products} products accepted, {len(result.catalog.rejected)} rows rejected"
        + (f" (catalog preset: {result.catalog.preset})" if result.catalog.preset else "")
    )
    for rejection in result.catalog.rejected[:rejections]:
        lines.append(f"  rejected row {rejection.row_number} ({rejection.sku or 'no sku'}): {rejection.reason}")
    if len(result.catalog.rejected) > rejections:
        lines.append(f"  … and {len(result.catalog.rejected) - rejections} more rejected rows (--rejections to show more)")
    if result.catalog.skipped:
        reasons = Counter(s.reason for s in result.catalog.skipped)
        detail = ", ".join(f"{n} {reason}" for reason, n in reasons.items())
        lines.append(f"{len(result.catalog.skipped)} products skipped ({detail}; --include-unpublished makes them)")
    if result.unchanged:
        lines.append(f"{result.unchanged} images unchanged since the previous run (skipped, free)")
    by_variant = ", ".join(f"{name} {n}" for name, n in result.per_variant.items())
    lines.append(f"{result.to_generate} images to generate ({by_variant or 'none'})")
    lines.append(f"estimated cost at list price: ${result.cost_usd:.2f} (no API was called)")
    return "\n".join(lines)
