"""Splitting one catalog between several flow runs (shards) without overlap or gaps.

A shard is chosen by a stable hash of the SKU, not by row position: inserting a row into
the catalog between two nightly runs moves no other product to another shard, so a shard's
re-run still finds its earlier images under their keys. Every shard loads and validates the
whole catalog (cheap next to the images) and keeps only its own items.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from bananaflow.errors import ConfigurationError

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ConfigurationError(f"shard_count must be at least 1, got {self.count}")
        if not 0 <= self.index < self.count:
            raise ConfigurationError(
                f"shard_index must be between 0 and {self.count - 1} for shard_count={self.count}, got {self.index}"
            )

    @property
    def is_whole(self) -> bool:
        return self.count == 1

    @property
    def label(self) -> str:
        """How people read it: ``2/4`` is the second of four."""
        return f"{self.index + 1}/{self.count}"

    def owns(self, sku: str) -> bool:
        """Whether this shard makes the images of ``sku`` (all variants of a SKU stay together)."""
        if self.count == 1:
            return True
        digest = hashlib.sha256(sku.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def select(self, items: Sequence[T], sku_of: Callable[[Any], str] = lambda item: item.sku) -> list[T]:
        """The items this shard owns, in their original order."""
        return [item for item in items if self.owns(sku_of(item))]

    @classmethod
    def all(cls, count: int) -> list[Shard]:
        return [cls(i, count) for i in range(count)]
