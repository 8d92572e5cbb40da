"""The manifest is written from bounded batches of the run's row log, whatever the run's size."""
from __future__ import annotations

from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.rowlog import RowLog
from bananaflow_prefect.tasks.reporting import MANIFEST_BATCH_ROWS, row_batches


def rows(n: int) -> list[ManifestRow]:
    return [ManifestRow(run_id="r", row_number=i, sku=f"SKU-{i}", variant="main", status="succeeded") for i in range(n)]


def test_a_row_log_is_read_back_in_bounded_batches_in_order() -> None:
    log = RowLog()
    try:
        n = 2 * MANIFEST_BATCH_ROWS + 7
        log.add(rows(n))
        batches = list(row_batches(log))
        assert [len(b) for b in batches] == [MANIFEST_BATCH_ROWS, MANIFEST_BATCH_ROWS, 7]
        assert [r.row_number for b in batches for r in b] == list(range(n))
    finally:
        log.close()


def test_a_list_of_rows_is_batched_the_same_way() -> None:
    batches = list(row_batches(rows(MANIFEST_BATCH_ROWS + 1)))
    assert [len(b) for b in batches] == [MANIFEST_BATCH_ROWS, 1]


def test_batches_stay_well_under_a_small_run() -> None:
    assert MANIFEST_BATCH_ROWS <= 2000  # a 2,000-item run and a 100,000-item one peak on the same batch
