"""Turning catalog rows into work items: one image to make, named before it is made.

A work item carries everything needed to generate and store one image *except* the bytes,
so it is small enough to hand between Prefect tasks, and its object key is fixed before any
call: the key is how a re-run knows the image already exists and is not paid for twice.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bananaflow.catalog import CatalogLoad
from bananaflow.keys import key_stem, params_hash
from bananaflow.models import get_model
from bananaflow.prompts import PromptTemplate


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


@dataclass(frozen=True)
class WorkItem:
    """One image to make. ``key_stem`` is the object key without its extension, which
    depends on the format the model returns."""

    row_number: int
    sku: str
    variant: str
    prompt: str
    model: str
    aspect_ratio: str
    image_size: str
    key_stem: str
    prompt_sha256: str


def plan_work(catalog: CatalogLoad, template: PromptTemplate, options: JobOptions, prefix: str) -> list[WorkItem]:
    """Render every accepted row's prompt and fix its key.

    The key digest covers the rendered prompt, model, ratio, size and the template's own
    hash, so changing any of them makes a new image and leaves the others alone.
    Raises ``TemplateError`` naming the row and field when a template can't be rendered.
    """
    options.validate()
    items = []
    for row in catalog.accepted:
        prompt = template.render(row.fields, row_number=row.row_number, sku=row.sku)
        digest = params_hash(
            prompt,
            options.model,
            {
                "aspect_ratio": options.aspect_ratio,
                "image_size": options.image_size,
                "template": template.content_hash,
            },
        )
        items.append(
            WorkItem(
                row_number=row.row_number,
                sku=row.sku,
                variant=options.variant,
                prompt=prompt,
                model=options.model,
                aspect_ratio=options.aspect_ratio,
                image_size=options.image_size,
                key_stem=key_stem(prefix, row.sku, options.variant, digest),
                prompt_sha256=hashlib.sha256(prompt.encode()).hexdigest(),
            )
        )
    return items


def chunked(items: list[WorkItem], size: int) -> list[list[WorkItem]]:
    """Split work into task-sized chunks (a Prefect task run costs 10-40 ms and floods a
    SQLite server's event queue past a few thousand per run, so one run is many items)."""
    size = max(1, size)
    return [items[i : i + size] for i in range(0, len(items), size)]


def chunk_size_for(total: int, concurrency: int, *, most: int = 100) -> int:
    """Small enough that every in-flight slot has work to the end, large enough that a
    10,000-item run stays within a few hundred task runs."""
    if total <= 0:
        return 1
    per_slot = -(-total // max(1, concurrency * 2))
    return max(1, min(most, per_slot))
