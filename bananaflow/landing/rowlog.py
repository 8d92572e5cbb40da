"""A run's manifest rows on local disk as they are made, not in the run's memory.

A 100,000-image run would hold 100,000 rows (and the futures that carried them) in the flow
process until the manifest is written. Chunk tasks append their final rows here instead and
return counts; the manifest, write-back and gallery read them back in batches at the end.
The file is a stream of pickled value tuples (``row_values``: pickling the slotted dataclass
itself costs several times more CPU) in a temporary file of the run (deleted on close).
"""
from __future__ import annotations

import pickle
import tempfile
import threading
from collections.abc import Iterable, Iterator

from bananaflow.landing.manifest import ManifestRow, row_values

__all__ = ["RowLog"]


class RowLog:
    """Append-only, thread-safe; iterate (or ``batches``) to read every row back in order."""

    def __init__(self, directory: str | None = None) -> None:
        self._file = tempfile.NamedTemporaryFile(prefix="bananaflow-rows-", suffix=".pickle", dir=directory)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, rows: Iterable[ManifestRow]) -> int:
        data = [pickle.dumps(row_values(row), protocol=pickle.HIGHEST_PROTOCOL) for row in rows]
        with self._lock:
            self._file.seek(0, 2)
            for blob in data:
                self._file.write(blob)
            self.count += len(data)
        return len(data)

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[ManifestRow]:
        with self._lock:
            self._file.flush()
            self._file.seek(0, 2)
            end = self._file.tell()
        with open(self._file.name, "rb") as reader:  # its own file position: rows may still be added
            while reader.tell() < end:
                yield ManifestRow(*pickle.load(reader))

    def batches(self, size: int = 5000) -> Iterator[list[ManifestRow]]:
        batch: list[ManifestRow] = []
        for row in self:
            batch.append(row)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    def close(self) -> None:
        self._file.close()
