"""The batch input and results files: one JSON object per line, tied to items by key.

Each input line is ``{"key": KEY, "request": GenerateContentRequest}``, the request body
being exactly what a realtime call sends (``providers.gemini.build_body``). KEY is the
item's ``key_stem`` (``prefix/sku/variant-digest``): unique per SKU and variant, and the
same key the image is stored under, so a result line names its item without any lookup
table that could be lost with a crashed process.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from bananaflow.planning.work import WorkItem
from bananaflow.providers.base import ImageRequest
from bananaflow.providers.gemini import build_body
from bananaflow.providers.models import get_model


def image_request(item: WorkItem) -> ImageRequest:
    return ImageRequest(prompt=item.prompt, model=item.model, aspect_ratio=item.aspect_ratio, image_size=item.image_size)


def input_line(item: WorkItem) -> bytes:
    """One JSONL line (with its newline) for ``item``."""
    body = build_body(image_request(item), get_model(item.model))
    return (json.dumps({"key": item.key_stem, "request": body}, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def input_file(items: Iterable[WorkItem]) -> bytes:
    return b"".join(input_line(item) for item in items)


@dataclass(frozen=True)
class ResultLine:
    """One line of a results file: a ``GenerateContentResponse`` or an error envelope."""

    key: str | None
    response: dict[str, Any] | None
    error: dict[str, Any] | None
    problem: str = ""  # set when the line itself could not be read


def read_results(stream: IO[bytes]) -> Iterator[ResultLine]:
    """Lines of a results file, one at a time (the file can be far larger than memory
    should hold at once). A line that is not JSON is reported, not raised."""
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            yield ResultLine(None, None, None, f"results line {number} is not JSON")
            continue
        if not isinstance(line, dict):
            yield ResultLine(None, None, None, f"results line {number} is not an object")
            continue
        key = line.get("key")
        if key is None and isinstance(line.get("metadata"), dict):
            key = line["metadata"].get("key")
        response = line.get("response") if isinstance(line.get("response"), dict) else None
        error = line.get("error") if isinstance(line.get("error"), dict) else None
        yield ResultLine(str(key) if key is not None else None, response, error)
