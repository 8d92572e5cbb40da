"""Claims: an owner id (not host + PID) and a renewed lease decide takeover; claims go
away once their image is safe, even when S3 refused their release at the time."""
from __future__ import annotations

import json
import threading
import time

from bananaflow.errors import StorageError
from bananaflow.landing.claims import CLAIM_SUFFIX, Claim, KeyClaims, claim_key
from bananaflow.landing.spool import Spool


class _Store:
    """Conditional create, overwrite, list and delete over a dict; ``down`` refuses all."""

    bucket = "b"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.down = False
        self.lock = threading.Lock()

    def _check(self) -> None:
        if self.down:
            raise StorageError("S3 is down")

    def put_image(self, key, data, content_type, metadata=None, *, if_absent=False) -> bool:  # noqa: ANN001
        self._check()
        with self.lock:
            if if_absent and key in self.objects:
                return False
            self.objects[key] = data
            return True

    def get_bytes(self, key: str) -> bytes:
        self._check()
        try:
            return self.objects[key]
        except KeyError:
            raise StorageError(f"{key} does not exist") from None

    def delete(self, key: str) -> None:
        self._check()
        self.objects.pop(key, None)

    def list_keys(self, prefix: str, max_keys: int = 1000) -> list[str]:
        self._check()
        return sorted(k for k in self.objects if k.startswith(prefix))


def test_two_containers_with_the_same_hostname_and_pid_are_two_owners() -> None:
    store = _Store()
    first, second = KeyClaims(store, "run-a", lease_s=60), KeyClaims(store, "run-b", lease_s=60)
    assert first.owner != second.owner
    assert first.try_claim("p/S/main-1")
    assert not second.try_claim("p/S/main-1")  # live lease: never taken over, whatever host or PID say
    legacy = {"run_id": "old", "host": "same-host", "pid": 1, "expires_at": time.time() + 3600}
    store.objects[claim_key("p/T/main-1")] = json.dumps(legacy).encode()
    assert Claim.from_bytes(store.objects[claim_key("p/T/main-1")]).owner == "same-host:1"
    assert not second.try_claim("p/T/main-1")  # a PID that looks dead proves nothing across containers
    first.release("p/S/main-1")


def test_a_held_claim_is_renewed_and_a_dead_owners_claim_ends_with_its_lease() -> None:
    store = _Store()
    live = KeyClaims(store, "live", lease_s=0.3)
    assert live.try_claim("p/L/main-1")
    first = Claim.from_bytes(store.objects[claim_key("p/L/main-1")])
    time.sleep(0.5)  # past the first lease: renewed meanwhile
    renewed = Claim.from_bytes(store.objects[claim_key("p/L/main-1")])
    assert renewed.expires_at > first.expires_at and renewed.expires_at > time.time()
    assert not KeyClaims(store, "other", lease_s=0.3).try_claim("p/L/main-1")
    live.release("p/L/main-1")
    assert not any(CLAIM_SUFFIX in k for k in store.objects)

    dead = Claim("killed", "gone-owner", time.time() + 0.2)  # a kill -9: nobody renews it
    store.objects[claim_key("p/D/main-1")] = dead.to_bytes()
    rescuer = KeyClaims(store, "rescue", lease_s=60)
    assert not rescuer.try_claim("p/D/main-1")
    time.sleep(0.3)
    assert rescuer.try_claim("p/D/main-1")
    rescuer.release("p/D/main-1")


def test_claims_are_removed_once_the_spool_drains_after_an_outage(tmp_path) -> None:  # noqa: ANN001
    store = _Store()
    claims = KeyClaims(store, "run", lease_s=60)
    stems = [f"p/S{i}/main-{i}" for i in range(5)]
    assert all(claims.try_claim(stem) for stem in stems)
    spool = Spool(tmp_path / "spool")
    store.down = True  # the outage: images go to the spool, releases fail
    for stem in stems[:3]:
        spool.put(f"{stem}.png", b"\x89PNG...", "image/png", {})
    for stem in stems:
        claims.release(stem)
    store.down = False
    assert sum(CLAIM_SUFFIX in k for k in store.objects) == 5  # left behind by the outage
    assert spool.drain(store) == 3  # the images are safe: their claims go with them
    assert sorted(k for k in store.objects if CLAIM_SUFFIX in k) == [claim_key(s) for s in stems[3:]]
    assert claims.release_pending() == 0  # the end of the run retries the rest
    assert not any(CLAIM_SUFFIX in k for k in store.objects)


class _CountingStore(_Store):
    def __init__(self) -> None:
        super().__init__()
        self.lists = 0

    def list_keys(self, prefix: str, max_keys: int = 1000) -> list[str]:
        self.lists += 1
        return super().list_keys(prefix, max_keys)


def test_releasing_a_first_claim_is_one_delete_and_leaves_a_later_owner_alone() -> None:
    store = _CountingStore()
    mine = KeyClaims(store, "run-a", lease_s=60)
    assert mine.try_claim("p/S/main-1") and store.lists == 0
    # our lease lapsed (S3 refused renewals) and another run took the key over
    store.objects[claim_key("p/S/main-1", 1)] = Claim("run-b", "other", time.time() + 60).to_bytes()
    mine.release("p/S/main-1")
    assert store.lists == 0  # no LIST for the common case
    assert list(store.objects) == [claim_key("p/S/main-1", 1)]  # theirs stays: it is their claim now


def test_releasing_a_taken_over_claim_removes_every_generation() -> None:
    store = _CountingStore()
    dead = Claim("run-old", "gone", time.time() - 1).to_bytes()
    store.objects[claim_key("p/S/main-2")] = dead
    mine = KeyClaims(store, "run-a", lease_s=60)
    assert mine.try_claim("p/S/main-2")  # generation 1, over the dead one
    mine.release("p/S/main-2")
    assert not [k for k in store.objects if CLAIM_SUFFIX in k]


def test_an_image_that_landed_before_the_claim_is_reported_and_the_claim_dropped() -> None:
    import asyncio

    store = _Store()
    claims = KeyClaims(store, "run-a", lease_s=60)
    stem = "p/S/main-3"
    store.objects[stem + ".png"] = b"made by another run just now"

    def done() -> str | None:
        return stem + ".png" if stem + ".png" in store.objects else None

    assert asyncio.run(claims.claim(stem, done, wait_s=0)) == stem + ".png"
    assert not [k for k in store.objects if CLAIM_SUFFIX in k]  # not paid for, not held
    del store.objects[stem + ".png"]
    assert asyncio.run(claims.claim(stem, done, wait_s=0)) is True  # still missing after the claim: ours
    assert claim_key(stem) in store.objects
