"""How many items go into one batch.

Google accepts input files up to 2 GB, but what limits an image batch is the *results*
file: a 2K image is about 8 MB of base64, and very large image batches have become
impossible to retrieve. So a batch is capped three ways: items, input bytes and the
expected size of its results; a large catalog becomes several batches that run in
parallel on Google's side.
"""
from __future__ import annotations

from dataclasses import dataclass

from bananaflow.errors import ConfigurationError
from bananaflow.planning.work import WorkItem

#: Expected base64 bytes of one result line per image size (PNG, the larger format,
#: plus usage metadata and one thought image): 2K ≈ 8 MB as the reference measures.
RESULT_BYTES_PER_IMAGE: dict[str, int] = {"512": 700_000, "1K": 2_200_000, "2K": 8_000_000, "4K": 24_000_000}


@dataclass(frozen=True)
class BatchLimits:
    """Caps on one batch. Defaults keep a 2K results file near 1 GB and a 4K one near
    2.4 GB, which downloads in minutes and stays retrievable."""

    max_items: int = 500
    max_input_bytes: int = 1_500_000_000
    max_result_bytes: int = 1_000_000_000

    def __post_init__(self) -> None:
        if self.max_items < 1 or self.max_input_bytes < 1 or self.max_result_bytes < 1:
            raise ConfigurationError("batch limits must be positive (max_items, max_input_bytes, max_result_bytes)")


def expected_result_bytes(image_size: str) -> int:
    """Bytes one result line of this size is expected to take (unknown sizes: the largest)."""
    return RESULT_BYTES_PER_IMAGE.get(image_size, RESULT_BYTES_PER_IMAGE["4K"])


def split_into_batches(
    items: list[WorkItem], limits: BatchLimits, input_bytes: dict[str, int] | None = None
) -> list[list[WorkItem]]:
    """Consecutive groups of ``items`` under every cap; one item always fits (a single
    image over a cap still gets its own batch rather than being dropped). The split is
    a pure function of the items, so the same items always make the same batches."""
    groups: list[list[WorkItem]] = []
    current: list[WorkItem] = []
    size_in = size_out = 0
    for item in items:
        line_in = (input_bytes or {}).get(item.key_stem, len(item.prompt) + 300)
        line_out = expected_result_bytes(item.image_size)
        if current and (
            len(current) >= limits.max_items
            or size_in + line_in > limits.max_input_bytes
            or size_out + line_out > limits.max_result_bytes
        ):
            groups.append(current)
            current, size_in, size_out = [], 0, 0
        current.append(item)
        size_in += line_in
        size_out += line_out
    if current:
        groups.append(current)
    return groups
