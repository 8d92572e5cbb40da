"""From a generated image to marketplace-ready files: the pipeline's output-preset step.

Runs between "the provider answered" and "the original is uploaded": convert and check the
image with its variant's preset (``bananaflow.landing.output_presets``), optionally pay for one more
attempt when QA fails, and upload the derivatives *before* the original, because the
original's key is what marks an item done: a crash in between leaves an item that is
simply made again, never one that looks done but lacks its derivatives.

An image that fails QA is still paid for, so it is kept, under ``.../qa-failed/`` where the
next run's existence check does not see it: the item ends ``qa_failed`` with the measured
numbers, and the next run tries again.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from bananaflow.errors import BananaflowError
from bananaflow.landing.outcome import ItemOutcome
from bananaflow.landing.output_presets import Finished, finish
from bananaflow.landing.spool import ImageUploader

log = logging.getLogger("bananaflow.landing.finishing")

QA_FAILED_FOLDER = "qa-failed"


class QAFailed(BananaflowError):
    """The image came back but does not meet its output preset's rules."""

    status = "qa_failed"


def derivative_key(stem: str, name: str, extension: str) -> str:
    """``{stem}--{name}.{ext}``: beside the original, outside its ``{stem}.`` existence prefix."""
    return f"{stem}--{name}.{extension}"


def qa_failed_stem(stem: str) -> str:
    """Where an image that failed QA is kept: a folder the existence check of ``stem`` does
    not look in, so the next run makes the item again."""
    folder, _, name = stem.rpartition("/")
    return "/".join(p for p in (folder, QA_FAILED_FOLDER, name) if p)


def qa_failed_key(stem: str, extension: str) -> str:
    return f"{qa_failed_stem(stem)}.{extension}"


def derivative_names(finished: Finished) -> str:
    """Compact list for object metadata (``amazon-main.jpg,thumb.jpg``), so a later run that
    finds the original can list its derivatives without listing the bucket."""
    return ",".join(f"{d.name}.{d.extension}" for d in finished.derivatives)


def derivative_keys_from_names(stem: str, names: str) -> dict[str, str]:
    keys = {}
    for entry in filter(None, (n.strip() for n in (names or "").split(","))):
        name, _, extension = entry.rpartition(".")
        if name and extension:
            keys[name] = derivative_key(stem, name, extension)
    return keys


async def apply_output_preset(
    preset: str,
    outcome: ItemOutcome,
    regenerate: Callable[[], Awaitable[ItemOutcome]] | None,
    *,
    context: str = "",
) -> tuple[ItemOutcome, Finished]:
    """Finish the outcome's image with ``preset``; with ``regenerate``, one more generation
    when QA fails. Both are paid: the returned outcome counts the requests and charges of
    both, and holds the second image unless the regeneration made none."""
    assert outcome.image is not None, "apply_output_preset needs an outcome with an image"
    finished = await asyncio.to_thread(finish, outcome.image.data, preset)
    if finished.report.passed or regenerate is None:
        return outcome, finished
    log.info("%s: %s; generating once more", context, finished.report.describe())
    second = await regenerate()
    both = replace(outcome, attempts=outcome.attempts + second.attempts,
                   charges=(*outcome.charges, *(replace(c, purpose=f"regeneration: {c.purpose}") for c in second.charges)))
    if second.image is None:  # keep the first (paid) image and its failed report
        log.warning("%s: regeneration after failed QA did not succeed: %s", context, second.error_message)
        return both, finished
    second_finished = await asyncio.to_thread(finish, second.image.data, preset)
    return replace(both, image=second.image, model=second.model, endpoint=second.endpoint), second_finished


def upload_derivatives(store: ImageUploader, stem: str, finished: Finished, metadata: dict[str, str]) -> dict[str, str]:
    """Upload each derivative beside the original; returns ``{name: key}``."""
    keys = {}
    for derivative in finished.derivatives:
        key = derivative_key(stem, derivative.name, derivative.extension)
        store.put_image(key, derivative.data, derivative.mime_type, metadata)
        keys[derivative.name] = key
    return keys


def keys_json(keys: dict[str, str]) -> str:
    return json.dumps(keys, sort_keys=True) if keys else ""
