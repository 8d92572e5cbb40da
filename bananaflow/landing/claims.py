"""Claiming an image's key before paying for it, so two runs never generate it twice.

A run that finds no object under a key still cannot be sure nobody else is making it: a
second run of the same job (a cron overlap, a person clicking "run" twice) sees the same
empty bucket. So before the first request for an item, its runner writes a small claim
object next to where the image will land, with a conditional write (``If-None-Match: *``):
S3 lets exactly one writer create it. The loser waits until the image appears (and reports
it as existing) or the claim goes away.

A claim names its run and its *owner* (a random id drawn once per ``KeyClaims``, so two
containers that share a hostname and PID 1 are still two owners) and carries a lease: the
owner renews the lease of every claim it holds while it works (a background thread, every
third of the lease), and a claim whose lease ran out is taken over. A crashed run
(``kill -9``, a lost machine) therefore blocks its keys for at most one lease
(``BANANAFLOW_CLAIM_LEASE_S``, default 60 s); nothing is inferred from host names or PIDs.
A claim of the *same* run is its own (a retried chunk), and is simply taken back.

Taking over is a conditional create too, never delete-then-create (two runs that both saw
the dead claim would then both win): claims have generations, ``stem~claim`` then
``stem~claim-1``, ``-2``, ..., the highest one is the one that counts, and only one run can
create generation n+1. The holder deletes every generation when it is done; when S3 is
down at that moment, the release is retried at the end of the run, and an image kept in the
local spool has its claims removed when the spool uploads it (``remove_claims``).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bananaflow.errors import StorageError

#: Appended to an item's key stem. Not ``.``: ``find_existing(stem)`` lists ``stem.*``
#: and must never mistake a claim for the image.
CLAIM_SUFFIX = "~claim"
CLAIM_CONTENT_TYPE = "application/json"
LEASE_ENV = "BANANAFLOW_CLAIM_LEASE_S"
DEFAULT_LEASE_S = 60.0
log = logging.getLogger("bananaflow.landing.claims")


def lease_from_env(default: float = DEFAULT_LEASE_S) -> float:
    """``BANANAFLOW_CLAIM_LEASE_S`` (seconds, > 0), else ``default``."""
    raw = os.environ.get(LEASE_ENV, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = default
    return value if value > 0 else default


class _ClaimStore(Protocol):
    def put_image(
        self, key: str, data: bytes, content_type: str, metadata: dict[str, str] | None = None, *, if_absent: bool = False
    ) -> bool: ...

    def get_bytes(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def list_keys(self, prefix: str) -> list[str]: ...


@dataclass(frozen=True)
class Claim:
    """Who is making the image under a key, and until when their claim holds."""

    run_id: str
    owner: str
    expires_at: float

    def to_bytes(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Claim | None:
        """None for a claim object that is not ours to read (garbage, half a write). A claim
        written before owners existed (host and pid) reads with ``host:pid`` as its owner."""
        try:
            raw = json.loads(data)
            owner = str(raw["owner"]) if "owner" in raw else f"{raw['host']}:{int(raw['pid'])}"
            return cls(str(raw["run_id"]), owner, float(raw["expires_at"]))
        except (ValueError, KeyError, TypeError):
            return None


def claim_keys(stem: str, keys: list[str]) -> list[str]:
    """The claim generations of ``stem`` among ``keys`` (a listing of its prefix)."""
    return [key for key in keys if key.startswith(stem + CLAIM_SUFFIX) and _generation(stem, key) is not None]


def remove_claims(store: Any, stem: str, keys: list[str] | None = None) -> None:
    """Delete every claim generation of ``stem`` (those among ``keys`` when the caller has
    just listed them): its image is safe in S3, so no claim on it matters any more (the
    spool uploaded it, or a run found it made while an interrupted run's claim was still
    beside it). Failures are left for the lease to end."""
    try:
        for key in claim_keys(stem, store.list_keys(stem + CLAIM_SUFFIX) if keys is None else keys):
            store.delete(key)
    except StorageError:
        log.debug("claims of %s not removed yet (S3 refused)", stem)


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
    """Claims keys for one run. Held claims are renewed every ``lease_s / 3`` while held;
    ``wait_s`` (default ``lease_s``) is how long an item waits for another live run's claim
    before it is deferred (set it to the item's whole retry deadline plus its upload)."""

    def __init__(
        self,
        store: _ClaimStore,
        run_id: str,
        *,
        lease_s: float,
        poll_s: float = 0.5,
        clock: Callable[[], float] = time.time,
        owner: str | None = None,
        wait_s: float | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.lease_s = lease_s
        self.wait_s = lease_s if wait_s is None else wait_s
        self.poll_s = poll_s
        self.clock = clock
        self.owner = owner or uuid.uuid4().hex
        self._held: dict[str, int] = {}  # stem -> generation this owner holds
        self._pending: set[str] = set()  # releases S3 refused; retried by ``release_pending``
        self._lock = threading.Lock()
        self._renewer: threading.Thread | None = None

    def _mine(self) -> Claim:
        return Claim(self.run_id, self.owner, self.clock() + self.lease_s)

    def _stale(self, claim: Claim | None) -> bool:
        """A claim nobody is working on: unreadable, or its lease ran out (a live owner
        renews it well before)."""
        return claim is None or claim.expires_at <= self.clock()

    def _hold(self, stem: str, generation: int) -> None:
        with self._lock:
            self._held[stem] = generation
            if self._renewer is None or not self._renewer.is_alive():
                self._renewer = threading.Thread(target=self._renew_loop, name="claim-renewer", daemon=True)
                self._renewer.start()

    def _renew_loop(self) -> None:
        """Renew every held claim each third of the lease, until nothing is held."""
        while True:
            time.sleep(max(0.05, self.lease_s / 3))
            with self._lock:
                stems = list(self._held)
                if not stems:
                    self._renewer = None
                    return
            for stem in stems:
                self.renew(stem)

    def renew(self, stem: str) -> None:
        """Push the lease of a held claim forward (nothing if it is no longer held)."""
        with self._lock:
            generation = self._held.get(stem)
            if generation is None:
                return
            try:
                self.store.put_image(claim_key(stem, generation), self._mine().to_bytes(), CLAIM_CONTENT_TYPE)
            except StorageError:
                log.debug("lease of %s not renewed (S3 refused); retried next time", stem)

    def try_claim(self, stem: str) -> bool:
        """Claim ``stem`` now: True when this run holds it, False when another live run does.

        Raises ``StorageError`` when S3 cannot be asked: the item then fails before any
        request is paid for, and the next run makes it.
        """
        if self._create(claim_key(stem)):
            self._hold(stem, 0)
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
            self._hold(stem, top)
            return True  # ours, from an earlier attempt of the same chunk
        if not self._stale(current):
            return False
        # Of all runs that saw this claim dead, exactly one creates the next generation.
        if self._create(claim_key(stem, top + 1)):
            self._hold(stem, top + 1)
            return True
        return False

    def _create(self, key: str) -> bool:
        return self.store.put_image(key, self._mine().to_bytes(), CLAIM_CONTENT_TYPE, if_absent=True)

    def _generations(self, stem: str) -> list[int]:
        found = (_generation(stem, key) for key in self.store.list_keys(stem + CLAIM_SUFFIX))
        return [g for g in found if g is not None]

    async def claim(self, stem: str, done: Callable[[], str | None], wait_s: float) -> str | bool:
        """Wait until this run holds ``stem`` and its image is still missing (True), or the
        image exists (its key, from ``done``; nothing is held then), or ``wait_s`` passed
        with another run still on it (False)."""
        deadline = time.monotonic() + wait_s
        while True:
            outcome = await asyncio.to_thread(self._attempt, stem, done)
            if outcome is not False or time.monotonic() >= deadline:
                return outcome
            await asyncio.sleep(self.poll_s)

    def _attempt(self, stem: str, done: Callable[[], str | None]) -> str | bool:
        """One try, in one trip to a worker thread: claim, then look again, because the
        image may have landed between the caller's first look and the claim (a claim just
        taken is dropped again when it has)."""
        if not self.try_claim(stem):
            return done() or False
        try:
            existing = done()
        except BaseException:
            self.release(stem)
            raise
        if existing:
            self.release(stem)
            return existing
        return True

    def release(self, stem: str) -> None:
        """Drop this run's claim once the image is stored (or spooled) or has failed for
        good. When S3 refuses, the release is kept for ``release_pending`` (the end of the
        run) and the lease, no longer renewed, ends on its own."""
        with self._lock:
            held = self._held.pop(stem, None)
            try:
                if held == 0:  # the common case, a first claim: one DELETE, no LIST
                    self.store.delete(claim_key(stem))
                else:  # taken over from a dead run, or retried: every generation listed
                    for generation in sorted(self._generations(stem)):
                        self.store.delete(claim_key(stem, generation))
            except StorageError:
                self._pending.add(stem)
            else:
                self._pending.discard(stem)

    def release_pending(self) -> int:
        """Retry the releases S3 refused; returns how many are still left."""
        for stem in sorted(self._pending):
            self.release(stem)
        return len(self._pending)
