"""``bananaflow prompts``: what a job would generate and cost, without calling any API.

Templates are code that runs on data nobody reviewed; the cheapest place to find out that
``{{ color }}`` is empty for half the catalog, or that the kitchen override never matches,
is before paying for 30,000 images. This renders every prompt exactly as a run would (same
planner, same keys) and prices the work at list price.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bananaflow.catalog.loader import CatalogLoad
from bananaflow.errors import ConfigurationError
from bananaflow.options import CatalogOptions
from bananaflow.planning.jobspec import Job
from bananaflow.planning.plan import plan_catalog
from bananaflow.planning.work import WorkItem
from bananaflow.providers.models import get_model


@dataclass
class Preview:
    catalog: CatalogLoad
    items: list[WorkItem]
    unchanged: int = 0
    per_variant: dict[str, int] = field(default_factory=dict)
    cost_usd: float = 0.0

    @property
    def to_generate(self) -> int:
        return len(self.items) - self.unchanged


def preview(
    catalog: str,
    job: Job,
    *,
    prefix: str = "bananaflow",
    reading: CatalogOptions | None = None,
    bucket: str | None = None,
) -> Preview:
    """Plan ``job`` over ``catalog`` (the run's planner, ``planning.plan``); the cost counts
    only what would be generated (items unchanged since ``reading.previous_manifest`` are free)."""
    from bananaflow.planning.delta import LATEST, split_previous

    reading = reading or CatalogOptions()
    previous_manifest = reading.previous_manifest
    planned = plan_catalog(catalog, job, reading, prefix=prefix)
    loaded, items = planned.catalog, planned.items
    store = None
    if previous_manifest == LATEST:
        if not bucket:
            raise ConfigurationError("--previous-manifest latest needs --bucket (where the earlier runs are)")
        from bananaflow.landing.destination import open_store

        store = open_store(bucket)
    to_make, _ = split_previous(items, previous_manifest, "preview", store=store, prefix=prefix)
    cost = sum(get_model(i.model).list_price(i.image_size) for i in to_make)
    return Preview(
        catalog=loaded,
        items=items,
        unchanged=len(items) - len(to_make),
        per_variant=dict(Counter(i.variant for i in to_make)),
        cost_usd=round(cost, 4),
    )


def format_preview(result: Preview, *, limit: int = 20, rejections: int = 10) -> str:
    """Plain text: rendered prompts (first ``limit``), then counts, the first ``rejections``
    rejected rows, skipped products and list-price cost."""
    lines = []
    for item in result.items[:limit]:
        extras = []
        if item.output_preset:
            extras.append(f"preset {item.output_preset}")
        if item.reference_links or item.group_reference_stem:
            n = len(item.reference_links) + (1 if item.group_reference_stem else 0)
            extras.append(f"{n} reference photo{'s' if n != 1 else ''}")
        meta = ", ".join([item.model, item.aspect_ratio, item.image_size, f"template {item.template}", *extras])
        lines.append(f"row {item.row_number} · {item.sku} · {item.variant} ({meta})")
        lines.append(f"  {item.prompt}")
    if len(result.items) > limit:
        lines.append(f"… and {len(result.items) - limit} more prompts (--limit to show more)")
    products = len({i.sku for i in result.items})
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
