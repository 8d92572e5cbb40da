"""Planned work kept on local disk, not in the run's memory.

A 100,000-image night plans 100,000 items, and a run that held them all would grow with the
catalog. Planning writes each item to a private temporary SQLite database as the catalog
streams past (SQLite deletes the file when the store is closed); the run asks it for counts
(progress, mode, chunk size) and reads items back a chunk at a time, wave by wave and in SKU
order, so the process holds a window of items, never the catalog. A previous manifest is
loaded beside the items, so "unchanged since the last run" is one join, not a dict of every
earlier row.
"""
from __future__ import annotations

import pickle
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from bananaflow.landing.keys import stem_of
from bananaflow.landing.manifest import ManifestRow
from bananaflow.planning.work import WorkItem

#: Items written or read per SQLite statement.
_BATCH = 1000

_SCHEMA = """
CREATE TABLE items (seq INTEGER PRIMARY KEY, sku TEXT NOT NULL, variant TEXT NOT NULL, key_stem TEXT NOT NULL,
                    wave INTEGER NOT NULL, needs_references INTEGER NOT NULL, item BLOB NOT NULL);
CREATE INDEX items_by_wave ON items (wave, sku, variant, seq);
CREATE TABLE previous (sku TEXT NOT NULL, variant TEXT NOT NULL, stem TEXT NOT NULL, row BLOB NOT NULL,
                       PRIMARY KEY (sku, variant));
"""


_Stored = TypeVar("_Stored", WorkItem, ManifestRow)


def _dump(value: object) -> bytes:
    return zlib.compress(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), 1)


def _load(blob: bytes, kind: type[_Stored]) -> _Stored:
    value = pickle.loads(zlib.decompress(blob))  # noqa: S301 -- written by this process, to its own temporary file
    if not isinstance(value, kind):  # only a bug in this module gets here
        raise TypeError(f"the work store read a {type(value).__name__} where it wrote a {kind.__name__}")
    return value


def wave_of(item: WorkItem) -> int:
    """0 for an item that needs no sibling's image; 1 for one whose reference is another
    item's image (the first product of its group), which must run after it."""
    return 1 if item.group_reference_stem else 0


class WorkStore:
    """The items of one run, on disk. Safe to use from several threads (one lock)."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("", check_same_thread=False)  # "": a private temporary file
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def add(self, items: Iterable[WorkItem], *, keep: Callable[[WorkItem], bool] | None = None) -> int:
        """Write ``items`` (those ``keep`` accepts); returns how many were written."""
        rows = ((item.sku, item.variant, item.key_stem, wave_of(item),
                 int(bool(item.reference_links or item.group_reference_stem)), _dump(item))
                for item in items if keep is None or keep(item))
        return self._write(
            "INSERT INTO items (sku, variant, key_stem, wave, needs_references, item) VALUES (?, ?, ?, ?, ?, ?)", rows)

    def _write(self, sql: str, rows: Iterable[tuple]) -> int:
        """``sql`` for every row, ``_BATCH`` rows per transaction; how many rows."""
        written = 0
        batch: list[tuple] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= _BATCH:
                written += self._write_batch(sql, batch)
                batch = []
        return written + self._write_batch(sql, batch)

    def _write_batch(self, sql: str, batch: list[tuple]) -> int:
        with self._lock, self._db:
            self._db.executemany(sql, batch)
        return len(batch)

    def _scalar(self, sql: str, *args: object) -> int:
        with self._lock:
            return int(self._db.execute(sql, args).fetchone()[0])

    def count(self, wave: int | None = None) -> int:
        """Items to make (in ``wave``, if given)."""
        if wave is None:
            return self._scalar("SELECT COUNT(*) FROM items")
        return self._scalar("SELECT COUNT(*) FROM items WHERE wave = ?", wave)

    @property
    def products(self) -> int:
        return self._scalar("SELECT COUNT(DISTINCT sku) FROM items")

    def waves(self) -> list[int]:
        """The waves that hold items, in the order they must run."""
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT DISTINCT wave FROM items ORDER BY wave")]

    @property
    def sends_references(self) -> bool:
        """Whether any item sends reference photos (a sibling's image counts)."""
        return bool(self._scalar("SELECT EXISTS (SELECT 1 FROM items WHERE needs_references = 1)"))

    def __iter__(self) -> Iterator[WorkItem]:
        """Every item, in the order it was added."""
        return self._items(("seq",))

    def in_wave(self, wave: int) -> Iterator[WorkItem]:
        """The items of ``wave``, ordered by SKU then variant."""
        return self._items(("sku", "variant", "seq"), "wave = ?", (wave,))

    def chunks(self, wave: int, size: int) -> Iterator[list[WorkItem]]:
        """The items of ``wave`` in chunks of ``size``, in SKU order: a chunk covers one
        contiguous range of SKUs, so its task run (named by its first and last SKU) is where
        a person looks for a product."""
        chunk: list[WorkItem] = []
        for item in self.in_wave(wave):
            chunk.append(item)
            if len(chunk) >= max(1, size):
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def _items(self, order: tuple[str, ...], where: str = "", args: tuple[object, ...] = ()) -> Iterator[WorkItem]:
        """Items ``where`` holds, in ``order`` (ending in the unique ``seq``), read ``_BATCH``
        at a time after a bookmark (the last row's order columns), so no statement stays open
        between reads (other threads and statements may use the store meanwhile)."""
        columns = ", ".join(order)
        after: tuple[object, ...] = ()
        while True:
            conditions = [where] if where else []
            if after:
                conditions.append(f"({columns}) > ({', '.join('?' * len(order))})")
            sql = (f"SELECT item, {columns} FROM items" + (" WHERE " + " AND ".join(conditions) if conditions else "")
                   + f" ORDER BY {columns} LIMIT ?")
            with self._lock:
                rows = self._db.execute(sql, (*args, *after, _BATCH)).fetchall()
            if not rows:
                return
            for row in rows:
                yield _load(row[0], WorkItem)
            after = tuple(rows[-1][1:])

    def drop_unchanged(
        self, previous: Iterable[ManifestRow], unchanged_row: Callable[[ManifestRow, WorkItem], ManifestRow]
    ) -> Iterator[list[ManifestRow]]:
        """Take out the items a previous run already made exactly as planned (its done row for
        the same SKU and variant has the same key stem) and yield their rows, made by
        ``unchanged_row(previous row, item)``, a batch at a time."""
        self._load_previous(previous)
        query = ("SELECT i.seq, i.item, p.row FROM items i JOIN previous p "
                 "ON p.sku = i.sku AND p.variant = i.variant AND p.stem = i.key_stem "
                 "WHERE i.seq > ? ORDER BY i.seq LIMIT ?")
        last = 0
        while True:
            with self._lock:
                found = self._db.execute(query, (last, _BATCH)).fetchall()
            if not found:
                return
            last = found[-1][0]
            self._write_batch("DELETE FROM items WHERE seq = ?", [(seq,) for seq, _, _ in found])
            yield [unchanged_row(_load(row, ManifestRow), _load(item, WorkItem)) for _, item, row in found]

    def _load_previous(self, rows: Iterable[ManifestRow]) -> None:
        # a later row for the same product wins, as in the manifest
        self._write("INSERT OR REPLACE INTO previous VALUES (?, ?, ?, ?)",
                    ((row.sku, row.variant, stem_of(row.key), _dump(row)) for row in rows))

    def close(self) -> None:
        with self._lock:
            self._db.close()

