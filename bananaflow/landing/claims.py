"""Claiming an image's key before paying for it, so two runs never generate it twice.

A run that finds no object under a key still cannot be sure nobody else is making it: a
second run of the same job (a cron overlap, a person clicking "run" twice) sees the same
empty bucket. So before the first request for an item, its runner writes a small claim
object next to where the image will land, with a conditional write (``If-None-Match: *``):
S3 lets exactly one writer create it. The loser waits until the image appears (and reports
it as existing) or the claim goes away.

A claim names its run and process and carries an expiry, so a claim left behind by a
crashed run (``kill -9``, a lost machine) does not block the key for ever: a claim of a
process that is gone from this host is taken over at once, any other after its lease.
A claim of the *same* run is its own (a retried chunk), and is simply taken back.

Taking over is a conditional create too, never delete-then-create (two runs that both saw
the dead claim would then both win): claims have generations, ``stem~claim`` then
``stem~claim-1``, ``-2``, ..., the highest one is the one that counts, and only one run can
create generation n+1. The holder deletes every generation when it is done.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bananaflow.errors import StorageError

#: Appended to an item's key stem. Not ``.``: ``find_existing(stem)`` lists ``stem.*``
#: and must never mistake a claim for the image.
CLAIM_SUFFIX = "~claim"
CLAIM_CONTENT_TYPE = "application/json"


class _ClaimStore(Protocol):
    def put_image(
        self, key: str, data: bytes, content_type: str, metadata: dict[str, str] | None = None, *, if_absent: bool = False
    ) -> bool: ...

    def get_bytes(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def list_keys(self, prefix: str, max_keys: int = 1000) -> list[str]: ...


@dataclass(frozen=True)
class Claim:
    """Who is making the image under a key, and until when their claim holds."""

    run_id: str
    host: str
    pid: int
    expires_at: float

    def to_bytes(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Claim | None:
        """None for a claim object that is not ours to read (garbage, half a write)."""
        try:
            raw = json.loads(data)
            return cls(str(raw["run_id"]), str(raw["host"]), int(raw["pid"]), float(raw["expires_at"]))
        except (ValueError, KeyError, TypeError):
            return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def claim_key(stem: str, generation: int = 0) -> str:
    return stem + CLAIM_SUFFIX + (f"-{generation}" if generation else "")


def _generation(stem: str, key: str) -> int | None:
    rest = key[len(stem + CLAIM_SUFFIX):]
    if rest == "":
        return 0
    if rest.startswith("-") and rest[1:].isdigit():
        return int(rest[1:])
    return None


class KeyClaims:
    """Claims keys for one run. ``lease_s`` must outlast one item's whole retry deadline
    plus its upload, since a live claimant does not renew its claim."""

    def __init__(
        self,
        store: _ClaimStore,
        run_id: str,
        *,
        lease_s: float,
        poll_s: float = 0.5,
        clock: Callable[[], float] = time.time,
        host: str | None = None,
        pid: int | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.clock = clock
        self.host = host or socket.gethostname()
        self.pid = os.getpid() if pid is None else pid

    def _mine(self) -> Claim:
        return Claim(self.run_id, self.host, self.pid, self.clock() + self.lease_s)

    def _stale(self, claim: Claim | None) -> bool:
        """A claim nobody is working on: unreadable, expired, or its process is gone."""
        if claim is None or claim.expires_at <= self.clock():
            return True
        return claim.host == self.host and claim.pid != self.pid and not _process_alive(claim.pid)

    def try_claim(self, stem: str) -> bool:
        """Claim ``stem`` now: True when this run holds it, False when another live run does.

        Raises ``StorageError`` when S3 cannot be asked: the item then fails before any
        request is paid for, and the next run makes it.
        """
        if self._create(claim_key(stem)):
            return True  # the common case: nobody had claimed it
        generations = self._generations(stem)
        if not generations:
            return False  # released just now; the next poll finds the image or claims it
        top = max(generations)
        try:
            current = Claim.from_bytes(self.store.get_bytes(claim_key(stem, top)))
        except StorageError:  # released between the listing and this read
            return False
        if current is not None and current.run_id == self.run_id:
            return True  # ours, from an earlier attempt of the same chunk
        if not self._stale(current):
            return False
        # Of all runs that saw this claim dead, exactly one creates the next generation.
        return self._create(claim_key(stem, top + 1))

    def _create(self, key: str) -> bool:
        return self.store.put_image(key, self._mine().to_bytes(), CLAIM_CONTENT_TYPE, if_absent=True)

    def _generations(self, stem: str) -> list[int]:
        found = (_generation(stem, key) for key in self.store.list_keys(stem + CLAIM_SUFFIX))
        return [g for g in found if g is not None]

    async def claim(self, stem: str, done: Callable[[], str | None], wait_s: float) -> str | bool:
        """Wait until this run holds ``stem`` (True), or the image has appeared (its key,
        from ``done``), or ``wait_s`` passed with another run still on it (False)."""
        deadline = time.monotonic() + wait_s
        while True:
            if await asyncio.to_thread(self.try_claim, stem):
                return True
            existing = await asyncio.to_thread(done)
            if existing:
                return existing
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(self.poll_s)

    def release(self, stem: str) -> None:
        """Drop this run's claim once the image is stored or has failed for good. A failure
        to delete only delays the key: a later run takes the claim over when this process
        is gone or the lease has ended."""
        try:
            for generation in sorted(self._generations(stem)):
                self.store.delete(claim_key(stem, generation))
        except StorageError:
            pass
