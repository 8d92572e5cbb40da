"""Turning catalog rows into work items: one image to make, named before it is made.

A work item carries everything needed to generate and store one image *except* the bytes,
so it is small enough to hand between Prefect tasks, and its object key is fixed before any
call: the key is how a re-run knows the image already exists and is not paid for twice.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bananaflow.catalog.loader import CatalogLoad, split_links
from bananaflow.landing.keys import key_stem, params_hash
from bananaflow.planning.prompts import PromptTemplate
from bananaflow.providers.models import get_model

if TYPE_CHECKING:
    from bananaflow.planning.jobspec import Job


@dataclass(frozen=True)
class JobOptions:
    """What to generate for every product of a catalog (one variant)."""

    model: str
    image_size: str = "1K"
    aspect_ratio: str = "1:1"
    variant: str = "main"

    def validate(self) -> None:
        """Fail before any call when the model would refuse the ratio or size."""
        get_model(self.model).validate(self.aspect_ratio, self.image_size)


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One image to make. ``key_stem`` is the object key without its extension, which
    depends on the format the model returns. A run plans every item up front, so items
    have slots (no per-instance ``__dict__``).

    ``reference_links`` are photos of the real product to send with the prompt;
    ``group_reference_stem`` is the key stem of the image made for the first product of
    the same ``item_group_id`` (same variant), sent too so the group keeps one look.
    ``output_preset`` names the marketplace preset to convert and check the result with."""

    row_number: int
    sku: str
    variant: str
    prompt: str
    model: str
    aspect_ratio: str
    image_size: str
    key_stem: str
    prompt_sha256: str
    template: str = ""
    output_preset: str = ""
    reference_links: tuple[str, ...] = ()
    group_reference_stem: str = ""
    max_reference_side: int = 2048
    regenerate_on_qa_failure: bool = False
    #: The catalog's folder (or ``s3://bucket/prefix/``): local photos must stay under it.
    reference_root: str = ""


def plan_work(catalog: CatalogLoad, template: PromptTemplate, options: JobOptions, prefix: str) -> list[WorkItem]:
    """One variant per product, as the single-template flags describe (see ``plan_job``)."""
    from bananaflow.planning.jobspec import Job, JobSpec, ResolvedVariant, VariantSpec

    options.validate()
    variant = ResolvedVariant(
        options.variant, template, options.aspect_ratio, options.image_size, options.model, "", reference=False
    )
    spec = JobSpec(variants=[VariantSpec(name=options.variant)])
    return plan_job(catalog, Job(spec=spec, variants=(variant,), overrides=()), prefix)


def plan_job(catalog: CatalogLoad, job: Job, prefix: str) -> list[WorkItem]:
    """Render every (accepted product x variant) prompt and fix its key.

    The key digest covers the rendered prompt, model, ratio, size, the template's own hash
    and the reference photos' locations, so changing any of them makes a new image and
    leaves the others alone: editing one template regenerates exactly its variant.
    Raises ``TemplateError`` naming the row and field when a template can't be rendered.
    """
    from bananaflow.catalog.references import resolve_link

    refs = job.spec.references
    base_dir: Path | str = (
        catalog.source.rsplit("/", 1)[0] + "/"
        if catalog.source.startswith("s3://")
        else Path(catalog.source).expanduser().resolve().parent
    )
    group_leaders: dict[tuple[str, str], str] = {}
    items = []
    for row in catalog.accepted:
        group = row.fields.get(refs.group_field, "") if refs.group_reference else ""
        for variant in job.variants:
            template = job.template_for(variant, row.fields)
            prompt = template.render(row.fields, row_number=row.row_number, sku=row.sku)
            links: tuple[str, ...] = ()
            if variant.reference:
                links = tuple(
                    resolve_link(link, base_dir)
                    for column in (refs.field, refs.additional_field)
                    if column
                    for link in split_links(row.fields.get(column, ""))
                )
                if refs.max_images:
                    links = links[: refs.max_images]
            leader = group_leaders.get((group, variant.name), "") if group else ""
            params: dict[str, object] = {
                "aspect_ratio": variant.aspect_ratio,
                "image_size": variant.image_size,
                "template": template.content_hash,
            }
            if links:
                params["references"] = list(links)
            if leader:
                params["group_reference"] = leader
            digest = params_hash(prompt, variant.model, params)
            stem = key_stem(prefix, row.sku, variant.name, digest)
            if group and not leader:
                group_leaders[(group, variant.name)] = stem
            items.append(
                WorkItem(
                    row_number=row.row_number,
                    sku=row.sku,
                    variant=variant.name,
                    prompt=prompt,
                    model=variant.model,
                    aspect_ratio=variant.aspect_ratio,
                    image_size=variant.image_size,
                    key_stem=stem,
                    prompt_sha256=hashlib.sha256(prompt.encode()).hexdigest(),
                    template=template.name,
                    output_preset=variant.preset,
                    reference_links=links,
                    group_reference_stem=leader,
                    max_reference_side=refs.max_side,
                    regenerate_on_qa_failure=job.spec.qa.regenerate_once,
                    reference_root=str(base_dir) if links else "",
                )
            )
    return items


def waves(items: list[WorkItem]) -> list[list[WorkItem]]:
    """Items whose reference is another item's image run after it: first every item that
    needs no sibling's image, then the rest."""
    first = [item for item in items if not item.group_reference_stem]
    later = [item for item in items if item.group_reference_stem]
    return [w for w in (first, later) if w]


def chunked(items: list[WorkItem], size: int) -> list[list[WorkItem]]:
    """Split work into task-sized chunks (a Prefect task run costs 10-40 ms and floods a
    SQLite server's event queue past a few thousand per run, so one run is many items).

    Items are ordered by SKU first: a chunk then covers one contiguous range of SKUs, so
    its task run, named by its first and last SKU, is where a person looks for a product.
    """
    size = max(1, size)
    ordered = sorted(items, key=lambda item: (item.sku, item.variant))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def chunk_size_for(total: int, concurrency: int, *, most: int = 100) -> int:
    """Small enough that every in-flight slot has work to the end, large enough that a
    10,000-item run stays within a few hundred task runs."""
    if total <= 0:
        return 1
    per_slot = -(-total // max(1, concurrency * 2))
    return max(1, min(most, per_slot))
