"""Where a budget's money is counted: one account per cap, shared by every run that draws on it.

A cap holds for a *job*, not a process: a run, its shards (each on its own worker) and the
retries after it draw on one account, so each reservation must be an atomic
"spent + reserved + this <= cap" across processes and machines. Three places keep it:

* ``LocalAccount``: this process only (tests, the engine used as a library).
* ``RedisAccount`` (``BANANAFLOW_REDIS_URL`` set, the backend the rate limits share): one
  hash per account, changed by Lua scripts, so a reservation is one round trip.
* ``S3Account`` (no Redis): the run's own bucket, with conditional writes. The account is a
  log of numbered objects, each holding the totals after one change; a change is the
  create of the next number with ``If-None-Match: *``, which S3 lets exactly one writer do.
  The bucket is there for every run already; the Prefect server offers no atomic counter
  (global concurrency limits free their slots on release, variables have no
  compare-and-set), so it cannot keep money.

Amounts are integer micro-dollars, so thousands of settlements add up exactly.
Reservations never expire: a worker killed with a call in flight keeps its worst case
reserved (it may well have been billed), so an account errs on the side of spending less.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "AccountState", "BudgetAccount", "ConditionalStore", "LocalAccount", "RedisAccount", "S3Account", "micros", "usd",
]


def micros(amount_usd: float) -> int:
    return int(round(amount_usd * 1_000_000))


def usd(amount_micros: int) -> float:
    return amount_micros / 1_000_000


@dataclass(frozen=True)
class AccountState:
    """An account's totals: settled spend and open reservations, in micro-dollars."""

    spent: int = 0
    reserved: int = 0

    def fits(self, amount: int, cap: int) -> bool:
        return self.spent + self.reserved + amount <= cap

    def to_json(self) -> bytes:
        return json.dumps({"spent": self.spent, "reserved": self.reserved}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> AccountState:
        raw = json.loads(data)
        return cls(int(raw["spent"]), int(raw["reserved"]))


class BudgetAccount(Protocol):
    """One cap's account. ``cap_usd`` is this participant's cap: a retry given a larger
    ``--max-cost`` than its parent may spend the difference."""

    label: str  # how the user sets the cap: "--max-cost", "--daily-budget"
    cap_usd: float

    def reserve(self, amount_usd: float) -> bool:
        """Reserve ``amount_usd`` if spent + reserved + it stays within the cap; atomic."""
        ...

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        """Replace a reservation by what the call really cost (0 to release it)."""
        ...

    def state(self) -> AccountState: ...


class LocalAccount:
    """An account in this process's memory."""

    def __init__(self, label: str, cap_usd: float) -> None:
        self.label, self.cap_usd = label, float(cap_usd)
        self._lock = threading.Lock()
        self._state = AccountState()

    def reserve(self, amount_usd: float) -> bool:
        with self._lock:
            if not self._state.fits(micros(amount_usd), micros(self.cap_usd)):
                return False
            self._state = AccountState(self._state.spent, self._state.reserved + micros(amount_usd))
            return True

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        with self._lock:
            s = self._state
            self._state = AccountState(s.spent + micros(actual_usd), max(0, s.reserved - micros(reserved_usd)))

    def state(self) -> AccountState:
        with self._lock:
            return self._state


_RESERVE_LUA = r"""
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
local amount = tonumber(ARGV[2])
if spent + reserved + amount > tonumber(ARGV[1]) then return 0 end
redis.call('HINCRBY', KEYS[1], 'reserved', amount)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""

_SETTLE_LUA = r"""
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
local release = tonumber(ARGV[1])
if release > reserved then release = reserved end
redis.call('HINCRBY', KEYS[1], 'reserved', -release)
redis.call('HINCRBY', KEYS[1], 'spent', tonumber(ARGV[2]))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""


class RedisAccount:
    """An account in one Redis hash (``spent``, ``reserved``), expiring ``ttl_s`` after its last change."""

    def __init__(self, client: Any, key: str, label: str, cap_usd: float, *, ttl_s: int) -> None:  # noqa: ANN401
        self.label, self.cap_usd, self.key, self.ttl_s = label, float(cap_usd), key, int(ttl_s)
        self._redis = client
        self._reserve = client.register_script(_RESERVE_LUA)
        self._settle = client.register_script(_SETTLE_LUA)

    def reserve(self, amount_usd: float) -> bool:
        return bool(self._reserve(keys=[self.key], args=[micros(self.cap_usd), micros(amount_usd), self.ttl_s]))

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        self._settle(keys=[self.key], args=[micros(reserved_usd), micros(actual_usd), self.ttl_s])

    def state(self) -> AccountState:
        raw = self._redis.hmget(self.key, "spent", "reserved")
        return AccountState(int(raw[0] or 0), int(raw[1] or 0))


class ConditionalStore(Protocol):
    """What ``S3Account`` needs of a store (``bananaflow.landing.storage.ImageStore`` has it)."""

    def put_image(self, key: str, data: bytes, content_type: str, metadata: Any = None, *,  # noqa: ANN401
                  if_absent: bool = False) -> bool: ...

    def get_bytes(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...


class S3Account:
    """An account as a log of objects ``{base}/{n:012d}.json`` in the run's bucket; the highest
    number holds the totals. A change creates number n+1 only if nobody has (conditional
    write); the loser reads the new totals and tries again."""

    def __init__(self, store: ConditionalStore, base: str, label: str, cap_usd: float) -> None:
        self.label, self.cap_usd, self.base = label, float(cap_usd), base.rstrip("/")
        self._store = store
        self._lock = threading.Lock()
        self._seq, self._state = 0, AccountState()  # number 0 is the empty account, never written

    def _key(self, seq: int) -> str:
        return f"{self.base}/{seq:012d}.json"

    def _refresh(self) -> None:
        """Move to the newest entry: double the step while entries exist, then bisect (numbers have no gaps)."""
        if not self._store.exists(self._key(self._seq + 1)):
            return
        low, step = self._seq + 1, 1
        while self._store.exists(self._key(self._seq + step * 2)):
            step *= 2
            low = self._seq + step
        high = self._seq + step * 2  # missing
        while high - low > 1:
            mid = (low + high) // 2
            if self._store.exists(self._key(mid)):
                low = mid
            else:
                high = mid
        self._seq, self._state = low, AccountState.from_json(self._store.get_bytes(self._key(low)))

    def _change(self, reserve: int = 0, release: int = 0, spend: int = 0) -> bool:
        with self._lock:
            while True:
                s = self._state
                if reserve and not s.fits(reserve, micros(self.cap_usd)):
                    self._refresh()  # our view may be old in the other direction too: look before refusing
                    if not self._state.fits(reserve, micros(self.cap_usd)):
                        return False
                    s = self._state
                new = AccountState(s.spent + spend, max(0, s.reserved + reserve - release))
                if self._store.put_image(self._key(self._seq + 1), new.to_json(), "application/json", if_absent=True):
                    self._seq, self._state = self._seq + 1, new
                    return True
                self._refresh()

    def reserve(self, amount_usd: float) -> bool:
        return self._change(reserve=micros(amount_usd))

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        self._change(release=micros(reserved_usd), spend=micros(actual_usd))

    def state(self) -> AccountState:
        with self._lock:
            self._refresh()
            return self._state
