from __future__ import annotations

import pytest

from bananaflow.errors import ConfigurationError
from bananaflow.planning.sharding import Shard


def test_shards_partition_the_catalog_without_overlap_or_gaps():
    skus = [f"SKU-{i:05d}" for i in range(5000)]
    shards = Shard.all(4)
    parts = [shard.select(skus, sku_of=str) for shard in shards]
    assert sorted(sum(parts, [])) == skus
    assert all(900 < len(p) < 1600 for p in parts), [len(p) for p in parts]  # roughly even


def test_a_products_shard_does_not_depend_on_its_row_position():
    before = [f"SKU-{i}" for i in range(200)]
    after = ["NEW-1", *before[:100], "NEW-2", *before[100:]]
    for shard in Shard.all(3):
        kept_before = shard.select(before, sku_of=str)
        kept_after = [s for s in shard.select(after, sku_of=str) if not s.startswith("NEW")]
        assert kept_before == kept_after


def test_whole_catalog_is_one_shard():
    assert Shard().is_whole and Shard().select(["a", "b"], sku_of=str) == ["a", "b"]


@pytest.mark.parametrize("index,count", [(0, 0), (2, 2), (-1, 3)])
def test_bad_shard_numbers_name_the_parameter(index, count):
    with pytest.raises(ConfigurationError, match="shard_"):
        Shard(index, count)
