"""The flow's planning task: the catalog streamed into a work store, split between shards,
refused before any call when the provider cannot send reference photos."""
from __future__ import annotations

import pytest

from bananaflow.catalog.loader import load_catalog
from bananaflow.errors import ConfigurationError
from bananaflow.planning.jobspec import build_job, load_job
from bananaflow.planning.sharding import Shard
from bananaflow.planning.work import plan_job
from bananaflow_prefect.tasks.planning import plan
from tests.paths import CATALOG_FIXTURES, ROOT

CATALOG = str(ROOT / "examples" / "catalog.csv")
SHOP_JOB = ROOT / "examples" / "jobs" / "shop.yaml"
#: A Merchant Center feed with photo links and an item group (red tee leads, blue follows).
FEED = str(CATALOG_FIXTURES / "merchant_feed_gmc.tsv")


def test_shards_split_the_planned_items_without_overlap_or_gaps() -> None:
    job = build_job(model="gemini-3-pro-image")
    expected = plan_job(load_catalog(CATALOG), job, "p")
    stems: list[str] = []
    for shard in Shard.all(3):
        work = plan.fn(CATALOG, job, "p", provider_kind="gemini", shard=shard)
        try:
            stems += [i.key_stem for wave in work.items.waves() for c in work.items.chunks(wave, 5) for i in c]
            assert work.catalog_rows == len(expected) + len(work.rejected)
        finally:
            work.items.close()
    assert sorted(stems) == sorted(i.key_stem for i in expected)


def test_the_whole_catalog_is_one_store_with_its_counts() -> None:
    job = load_job(SHOP_JOB)
    work = plan.fn(FEED, job, "shop", provider_kind="gemini")
    try:
        expected = plan_job(load_catalog(FEED), job, "shop")
        assert work.items.waves() == [0, 1]  # the blue tee's main image waits for the red one's
        assert work.items.count() == len(expected) and work.products == work.items.products == len({i.sku for i in expected})
        assert work.items.sends_references and sorted(work.items, key=lambda i: i.key_stem) == sorted(
            expected, key=lambda i: i.key_stem)
    finally:
        work.items.close()


@pytest.mark.parametrize("shard", [Shard(), Shard(1, 4)])
def test_reference_photos_on_an_openai_relay_are_refused_whichever_shard(shard: Shard) -> None:
    with pytest.raises(ConfigurationError, match="sends reference photos, which the openai provider cannot take"):
        plan.fn(FEED, load_job(SHOP_JOB), "shop", provider_kind="openai", shard=shard)
