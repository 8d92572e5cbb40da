"""Finding earlier runs' manifests in the bucket: what the retry and shard flows read.

Every run writes ``<prefix>/runs/<UTC stamp>-<flow run name>/manifest.parquet``. The stamp
sorts by time, and the flow run name ties a manifest to its Prefect run, so no database
beyond the bucket itself is needed to answer "what did the last run leave undone?".
"""
from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bananaflow.landing.keys import join_key
from bananaflow.landing.manifest import ManifestRow, read_manifest
from bananaflow.landing.storage import ImageStore

#: Statuses a later run can still turn into an image.
RETRYABLE_STATUSES = frozenset({"failed", "deferred"})
MANIFEST_NAME = "manifest.parquet"


@dataclass(frozen=True)
class RunManifest:
    key: str
    run_dir: str  # "<stamp>-<flow run name>"
    rows: list[ManifestRow]

    @property
    def counts(self) -> Counter[str]:
        return Counter(row.status for row in self.rows)

    @property
    def to_retry(self) -> list[ManifestRow]:
        return [row for row in self.rows if row.status in RETRYABLE_STATUSES]


def manifest_keys(store: ImageStore, prefix: str | None = None) -> list[str]:
    """Keys of every run manifest under ``prefix`` (the store's own by default), oldest first."""
    runs = join_key(store.prefix if prefix is None else prefix, "runs") + "/"
    return [key for key in store.list_keys(runs) if key.endswith("/" + MANIFEST_NAME)]


def latest_manifest_key(store: ImageStore, prefix: str | None = None) -> str | None:
    """The newest run's manifest key, or None before the first run: run folders start with a
    sortable UTC stamp, so the last key is the newest."""
    keys = manifest_keys(store, prefix)
    return keys[-1] if keys else None


def load_run_manifest(store: ImageStore, key: str, *, sku: str | None = None) -> RunManifest:
    """A run's manifest; with ``sku``, only that product's rows."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / MANIFEST_NAME
        path.write_bytes(store.get_bytes(key))
        rows = read_manifest(path, sku=sku)
    return RunManifest(key=key, run_dir=key.rsplit("/", 2)[-2], rows=rows)


def latest_run_manifest(store: ImageStore) -> RunManifest | None:
    """The most recent run's manifest, or None before the first run."""
    key = latest_manifest_key(store)
    return load_run_manifest(store, key) if key else None


def manifests_of_runs(store: ImageStore, flow_run_names: Iterable[str]) -> dict[str, RunManifest]:
    """The manifest of each named flow run (the newest if a name ran twice); absent names
    are missing from the result, which is how a caller notices a shard that wrote none."""
    wanted = set(flow_run_names)
    found: dict[str, str] = {}
    for key in manifest_keys(store):
        run_dir = key.rsplit("/", 2)[-2]
        name = run_dir.partition("-")[2]
        if name in wanted:
            found[name] = key
    return {name: load_run_manifest(store, key) for name, key in found.items()}


def find_product(store: ImageStore, sku: str, runs: int = 5) -> list[tuple[str, ManifestRow]]:
    """``(run_dir, row)`` for every manifest row of ``sku`` in the newest ``runs`` run
    manifests, newest run first: where its images are, or why they are not."""
    wanted = sku.strip()
    found: list[tuple[str, ManifestRow]] = []
    for key in reversed(manifest_keys(store)[-max(1, runs):]):
        manifest = load_run_manifest(store, key, sku=wanted)
        found += [(manifest.run_dir, row) for row in manifest.rows if row.sku == wanted]
    return found
