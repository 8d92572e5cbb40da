"""The run's work items on disk: read back in chunks by wave and SKU, delta as a join."""
from __future__ import annotations

import pytest

from bananaflow.catalog.loader import load_catalog
from bananaflow.landing.manifest import ManifestRow
from bananaflow.planning import work_store
from bananaflow.planning.jobspec import load_job
from bananaflow.planning.work import plan_job
from bananaflow.planning.work_store import WorkStore
from tests.paths import CATALOG_FIXTURES, ROOT

EXAMPLE_JOB = ROOT / "examples" / "jobs" / "shop.yaml"


@pytest.fixture
def store():  # noqa: ANN201
    opened = WorkStore()
    yield opened
    opened.close()


def example_items() -> list:  # noqa: ANN201
    return plan_job(load_catalog(str(ROOT / "examples" / "catalog.csv")), load_job(EXAMPLE_JOB), "shop")


@pytest.mark.parametrize("batch", [1000, 3])  # 3: every read resumes after a bookmark
def test_chunks_hold_contiguous_sku_ranges_whatever_the_catalog_order(
    store: WorkStore, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk's task run is named by its first and last SKU, so a product lies in the
    chunk whose range holds it; a product's variants stay side by side."""
    monkeypatch.setattr(work_store, "_BATCH", batch)
    items = example_items()
    items.reverse()
    assert store.add(items) == len(items) == store.count()
    chunks = list(store.chunks(0, 7))
    assert all(len(c) == 7 for c in chunks[:-1]) and 0 < len(chunks[-1]) <= 7
    assert sorted(i.key_stem for c in chunks for i in c) == sorted(i.key_stem for i in items)
    assert [i for c in chunks for i in c if i.key_stem == items[0].key_stem] == [items[0]]  # the item itself
    spans = [(c[0].sku, c[-1].sku) for c in chunks]
    assert all(first <= last for first, last in spans)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "ranges follow each other without overlap"
    for chunk in chunks:
        first, last = chunk[0].sku, chunk[-1].sku
        assert {i.sku for i in items if first < i.sku < last} <= {i.sku for i in chunk}
    mug = [i.variant for c in chunks for i in c if i.sku == "MUG-001"]
    assert mug == ["banner", "lifestyle", "main"]
    assert list(store) == items  # in the order they were added


def test_group_siblings_come_in_the_wave_after_their_leader(store: WorkStore, tmp_path) -> None:  # noqa: ANN001
    spec = tmp_path / "job.yaml"
    spec.write_text('variants:\n  - {name: main, prompt: "{{ title }}", reference: true}\n'
                    "references: {group_reference: true}\n")
    red, blue = plan_job(load_catalog(str(CATALOG_FIXTURES / "merchant_feed_gmc.tsv")), load_job(spec), "p")
    store.add([blue, red])
    assert store.waves() == [0, 1] and store.sends_references
    assert list(store.chunks(0, 10)) == [[red]] and list(store.chunks(1, 10)) == [[blue]]
    assert store.count(0) == store.count(1) == 1 and store.products == 2


def test_keep_selects_what_is_stored(store: WorkStore) -> None:
    items = example_items()
    kept = store.add(items, keep=lambda item: item.variant == "main")
    assert kept == store.count() == len([i for i in items if i.variant == "main"]) and not store.sends_references


def test_drop_unchanged_takes_out_exactly_the_items_made_as_planned(
    store: WorkStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(work_store, "_BATCH", 2)
    items = example_items()
    store.add(items)
    same, moved, *_ = items
    previous = [
        ManifestRow(run_id="r1", row_number=1, sku=same.sku, variant=same.variant, status="succeeded",
                    key=f"{same.key_stem}.png", uri="s3://b/x.png", cost_usd=0.134),
        ManifestRow(run_id="r1", row_number=2, sku=moved.sku, variant=moved.variant, status="succeeded",
                    key=f"{moved.key_stem}-old.png", uri="s3://b/y.png", cost_usd=0.134),  # a different request
    ]
    rows = [r for batch in store.drop_unchanged(iter(previous), lambda before, item: before) for r in batch]
    assert rows == previous[:1]
    assert store.count() == len(items) - 1 and same not in list(store) and moved in list(store)
