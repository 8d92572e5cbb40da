"""The durable record of every batch bananaflow has created and not yet collected.

A batch costs money the moment it is created, and its results stay retrievable only for a
while; a crashed process must not forget it. So each batch is written down, in the same
S3 bucket as the images, *before* it is created, and again with its name right after (a
record left without a name is matched to its batch by display name, ``bananaflow-{job_id}``,
before anything is created again):

    {prefix}/runs/_batches/open/{job_id}.json     created (or being created), not collected
    {prefix}/runs/_batches/closed/{job_id}.json   collected, or ended failed/expired/cancelled

Why S3 and not a Prefect variable or block: the engine does not import Prefect; the bucket
is already required, shared by every worker and machine of a deployment, and outlives a
Prefect server that is reset or replaced; and the record holds the work items themselves
(a few hundred bytes each), far beyond what a variable is meant to carry. Why this key:
``job_id`` is a digest of the model and the item keys, so the same work makes the same id,
and ``open/`` is listed once per run to find batches a crashed run left behind.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

from bananaflow.errors import StorageError
from bananaflow.landing.storage import ImageStore
from bananaflow.planning.work import WorkItem

LEDGER_DIR = ("runs", "_batches")


def job_id_for(items: list[WorkItem]) -> str:
    """The same items with the same model always give the same id."""
    digest = hashlib.sha256()
    for stem in sorted(item.key_stem for item in items):
        digest.update(stem.encode())
        digest.update(b"\n")
    digest.update(items[0].model.encode() if items else b"")
    return digest.hexdigest()[:20]


@dataclass
class BatchJob:
    """One batch and the items in it, as written to the ledger."""

    job_id: str
    model: str
    items: list[WorkItem]
    run_id: str
    batch_name: str = ""  # "batches/..." once created
    file_name: str = ""  # the uploaded input, "files/..."
    created_at: str = ""
    state: str = "open"  # "open", then "collected" or the end state it reached
    end_state: str = ""

    @property
    def display_name(self) -> str:
        return f"bananaflow-{self.job_id}"

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> BatchJob:
        raw = json.loads(data)
        known = {f.name for f in fields(cls)}
        raw = {k: v for k, v in raw.items() if k in known}  # records from newer versions still read
        raw["items"] = [_work_item(item) for item in raw.get("items", [])]
        return cls(**raw)

    @property
    def keys(self) -> set[str]:
        return {item.key_stem for item in self.items}


def _work_item(raw: dict[str, Any]) -> WorkItem:
    """A work item from its JSON record: JSON has lists where the item holds tuples."""
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return WorkItem(**values)


@dataclass
class BatchLedger:
    """Reads and writes ``BatchJob`` records under the store's prefix."""

    store: ImageStore

    def _key(self, where: str, job_id: str) -> str:
        return self.store.key(*LEDGER_DIR, where, f"{job_id}.json")

    def save(self, job: BatchJob) -> None:
        """Write (or overwrite) an open record."""
        self.store.put_bytes(self._key("open", job.job_id), job.to_json(), "application/json")

    def open_jobs(self) -> list[BatchJob]:
        """Every batch created (or being created) and not yet collected or ended."""
        jobs = []
        for key in self.store.list_keys(self.store.key(*LEDGER_DIR, "open") + "/"):
            try:
                jobs.append(BatchJob.from_json(self.store.get_bytes(key)))
            except (ValueError, TypeError, KeyError) as exc:
                raise StorageError(f"batch ledger record {self.store.uri(key)} is unreadable ({exc}); "
                                   "fix or delete it (the batch it names may still hold paid results)") from None
        return jobs

    def close(self, job: BatchJob, state: str) -> None:
        """Move the record to ``closed/`` with its final state: collected, or ended."""
        job.state = state
        job.end_state = job.end_state or state
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        payload = json.loads(job.to_json())
        payload["closed_at"] = stamp
        self.store.put_bytes(self._key("closed", job.job_id), json.dumps(payload, indent=1).encode(), "application/json")
        self.store.delete(self._key("open", job.job_id))
