"""A work item made again because a person asked, with their note as a correction.

The corrected request is a new request (its own key, so the refused image is never taken for
it), but the same catalog row: ``prompt_sha256`` stays the row's, so the next delta run sees
an unchanged product.
"""
from __future__ import annotations

from dataclasses import replace

from bananaflow.landing.keys import key_stem, params_hash
from bananaflow.planning.work import WorkItem

__all__ = ["corrected_item", "correction_text"]


def correction_text(note: str) -> str:
    """The note as quoted data under a fixed instruction (a note is free text)."""
    quoted = " ".join(note.split())[:1000].replace('"', "'")
    return f'\n\nA reviewer refused the previous image of this product. Correction to apply: "{quoted}"' if quoted else (
        "\n\nA reviewer refused the previous image of this product: make it again, faithful to the product.")


def corrected_item(item: WorkItem, note: str, prefix: str) -> WorkItem:
    prompt = item.prompt + correction_text(note)
    digest = params_hash(prompt, item.model, {"corrects": item.key_stem})
    return replace(item, prompt=prompt, key_stem=key_stem(prefix, item.sku, item.variant, digest))
