"""Turning catalog rows into work items: one image to make, named before it is made.

A work item carries everything needed to generate and store one image *except* the bytes,
so it is small enough to hand between Prefect tasks, and its object key is fixed before any
call: the key is how a re-run knows the image already exists and is not paid for twice.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bananaflow.catalog import CatalogLoad, CatalogRow, sku_slug, split_links
from bananaflow.landing.keys import key_stem, params_hash

if TYPE_CHECKING:
    from bananaflow.planning.jobspec import Job, ResolvedVariant


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One image to make. ``key_stem`` is the object key without its extension, which
    depends on the format the model returns. A run keeps its planned items on disk
    (``planning.work_store``) and holds a window of them at a time.

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
    #: What the catalog says about the product (title, colour, material, brand, label text),
    #: for the quality gate's judge, as ``(field, value)`` pairs (quoted data, never instructions)
    facts: tuple[tuple[str, str], ...] = ()


#: Catalog fields the judge is shown, and how many characters of each.
FACT_FIELDS: tuple[str, ...] = ("title", "brand", "color", "material", "label_text", "product_type", "size")
FACT_CHARS = 300


def product_facts(fields: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The catalog's facts for the judge: the known fields that have a value, cut short."""
    aliases = {"colour": "color", "label": "label_text"}
    found = {aliases.get(k, k): v for k, v in fields.items() if aliases.get(k, k) in FACT_FIELDS and v and v.strip()}
    return tuple((name, found[name].strip()[:FACT_CHARS]) for name in FACT_FIELDS if name in found)


#: Separates a per-colour variant's name from its colour: ``main.black`` (see ``color_targets``).
COLOR_SEPARATOR = "."


def color_targets(fields: dict[str, str], variant_name: str) -> list[tuple[str, dict[str, str]]]:
    """(variant name, fields) per distinct colour of a product with a colour option (the
    Shopify preset's ``color_variants``): ``color`` holds that one colour and
    ``color_variant_skus`` its variants' SKUs. A product without colours is one target."""
    try:
        groups = json.loads(fields.get("color_variants") or "[]")
    except ValueError:
        groups = []
    targets: list[tuple[str, dict[str, str]]] = []
    seen: set[str] = set()
    for group in groups:
        slug = sku_slug(str(group.get("color", "")))[:40] or "color"
        if slug in seen:
            continue
        seen.add(slug)
        colored = dict(fields, color=str(group["color"]), color_variant_skus=", ".join(group.get("skus", [])))
        if group.get("image"):
            colored["variant_image"] = str(group["image"])
        targets.append((f"{variant_name}{COLOR_SEPARATOR}{slug}", colored))
    return targets or [(variant_name, fields)]


def plan_job(catalog: CatalogLoad, job: Job, prefix: str) -> list[WorkItem]:
    """Every work item of ``catalog`` (see ``iter_items``)."""
    return list(iter_items(catalog.accepted, catalog.source, job, prefix))


def iter_items(rows: Iterable[CatalogRow], source: str, job: Job, prefix: str) -> Iterator[WorkItem]:
    """Render every (accepted product x variant) prompt and fix its key, one row at a time;
    a variant with ``per_color`` makes one image per distinct colour, the first colour's
    image being the reference for the others when the variant sends reference photos.

    The key digest covers the rendered prompt, model, ratio, size, the template's own hash
    and the reference photos' locations, so changing any of them makes a new image and
    leaves the others alone: editing one template regenerates exactly its variant.
    Raises ``TemplateError`` naming the row and field when a template can't be rendered.
    """
    base_dir: Path | str = (
        source.rsplit("/", 1)[0] + "/" if source.startswith("s3://") else Path(source).expanduser().resolve().parent
    )
    group_leaders: dict[tuple[str, str], str] = {}
    for row in rows:
        group = row.fields.get(job.spec.references.group_field, "") if job.spec.references.group_reference else ""
        for variant in job.variants:
            targets = color_targets(row.fields, variant.name) if variant.per_color else [(variant.name, row.fields)]
            first_color = ""
            for name, fields in targets:
                leader = group_leaders.get((group, variant.name), "") if group else ""
                if variant.reference and first_color:
                    leader = first_color  # the product's first colour keeps the rest one product
                item = _item(job, variant, row.row_number, row.sku, name, fields, prefix, base_dir, leader)
                first_color = first_color or item.key_stem
                if group and not leader:
                    group_leaders[(group, variant.name)] = item.key_stem
                yield item


def _item(
    job: Job, variant: ResolvedVariant, row_number: int, sku: str, name: str, fields: dict[str, str],
    prefix: str, base_dir: Path | str, leader: str,
) -> WorkItem:
    from bananaflow.catalog.references import resolve_link

    refs = job.spec.references
    template = job.template_for(variant, fields)
    prompt = template.render(fields, row_number=row_number, sku=sku)
    links: tuple[str, ...] = ()
    if variant.reference:
        own = [fields["variant_image"]] if fields.get("variant_image") else []
        links = tuple(
            resolve_link(link, base_dir)
            for link in own + [
                link for column in (refs.field, refs.additional_field) if column
                for link in split_links(fields.get(column, ""))
            ]
        )
        links = tuple(dict.fromkeys(links))
        if refs.max_images:
            links = links[: refs.max_images]
    params: dict[str, object] = {
        "aspect_ratio": variant.aspect_ratio, "image_size": variant.image_size, "template": template.content_hash,
    }
    if links:
        params["references"] = list(links)
    if leader:
        params["group_reference"] = leader
    digest = params_hash(prompt, variant.model, params)
    return WorkItem(
        row_number=row_number,
        sku=sku,
        variant=name,
        prompt=prompt,
        model=variant.model,
        aspect_ratio=variant.aspect_ratio,
        image_size=variant.image_size,
        key_stem=key_stem(prefix, sku, name, digest),
        prompt_sha256=hashlib.sha256(prompt.encode()).hexdigest(),
        template=template.name,
        output_preset=variant.preset,
        reference_links=links,
        group_reference_stem=leader,
        max_reference_side=job.spec.references.max_side,
        regenerate_on_qa_failure=job.spec.qa.regenerate_once,
        reference_root=str(base_dir) if links else "",
        facts=product_facts(fields),
    )


#: Task runs one run may make for its chunks, whatever the catalog's size.
MOST_TASK_RUNS = 300


def chunk_size_for(
    total: int, concurrency: int, *, most: int = 100, workers: int = 16, most_task_runs: int = MOST_TASK_RUNS
) -> int:
    """Large enough that the chunks ``workers`` task threads run at once queue a few times
    the in-flight cap (the run's item pump refills a freed slot from any of them, so a chunk
    waiting for its slowest item leaves no slot idle); small enough that every thread has
    chunks to the end. ``most`` items per chunk, except that a run never needs more than
    ``most_task_runs`` task runs: past 30,000 items the chunk grows with the catalog (a task
    run costs the Prefect server 10-40 ms and a SQLite server loses events past a few
    thousand per run), so a 100,000-item run is 300 task runs, not 1,000."""
    if total <= 0:
        return 1
    per_slot = -(-total // max(1, concurrency * 2))
    to_fill = -(-4 * max(1, concurrency) // max(1, workers))
    return max(-(-total // max(1, most_task_runs)), min(most, max(1, per_slot, to_fill)))
