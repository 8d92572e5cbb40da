"""The flow reads chunks from the work store as task threads free up: a bounded window of
items is held, whatever the catalog's size, and every item is submitted once, wave by wave."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from bananaflow.planning.work import WorkItem
from bananaflow.planning.work_store import WorkStore
from bananaflow_prefect.flows import catalog_flow


def item(n: int, *, sibling_of: str = "") -> WorkItem:
    return WorkItem(row_number=n + 2, sku=f"SKU-{n:05d}", variant="main", prompt=f"product {n}",
                    model="gemini-3-pro-image", aspect_ratio="1:1", image_size="1K", key_stem=f"p/SKU-{n:05d}/main-x",
                    prompt_sha256="0" * 64, group_reference_stem=sibling_of)


class FakeTask:
    """Stands in for ``generate_images``: counts chunks submitted and not yet settled."""

    def __init__(self) -> None:
        self.outstanding = 0
        self.most_outstanding = 0
        self.submitted: list[list[WorkItem]] = []
        self.labels: list[str] = []

    def submit(self, *, run_id: str, items: list[WorkItem], label: str) -> object:
        self.outstanding += 1
        self.most_outstanding = max(self.most_outstanding, self.outstanding)
        self.submitted.append(items)
        self.labels.append(label)
        return object()

    def settle(self, chunk: list[WorkItem], future: object, run: object) -> int:
        self.outstanding -= 1
        return len(chunk)


@pytest.fixture
def store():  # noqa: ANN201
    opened = WorkStore()
    yield opened
    opened.close()


def test_chunks_are_submitted_a_window_at_a_time_and_every_item_once(
    store: WorkStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTask()
    monkeypatch.setattr(catalog_flow, "generate_images", fake)
    monkeypatch.setattr(catalog_flow, "settle_chunk", fake.settle)
    leaders = [item(n) for n in reversed(range(5_000))]
    siblings = [item(5_000 + n, sibling_of=leaders[n].key_stem) for n in range(500)]
    store.add(siblings + leaders)
    run = SimpleNamespace(run_id="r", config=SimpleNamespace(limits=SimpleNamespace(max_in_flight=8)))
    catalog_flow._generate_waves(run, store, "realtime")
    assert fake.outstanding == 0
    assert fake.most_outstanding == catalog_flow.CHUNKS_AHEAD < len(fake.submitted)
    made = [i.sku for chunk in fake.submitted for i in chunk]
    assert made == sorted(i.sku for i in leaders) + sorted(i.sku for i in siblings)  # leaders' wave first, SKU order
    first_wave = len([c for c in fake.submitted if not c[0].group_reference_stem])
    assert fake.labels[0] == f"1/{first_wave}" and fake.labels[first_wave - 1] == f"{first_wave}/{first_wave}"
