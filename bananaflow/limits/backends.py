"""Where a scope's meter counts live: in this process, or in Redis for many workers.

Both backends answer the same question atomically — "may one more request with this
demand start now on this scope, and if not, for how long should it wait?" — by checking
*every* meter before recording in any of them, so a request that one meter refuses never
uses up another meter's budget.

* ``InProcessBackend`` (the default) needs nothing and is exact for one process.
* ``RedisBackend`` (``BANANAFLOW_REDIS_URL=redis://...``) shares the counts between
  processes and machines. Each admission is one Lua script, run atomically by Redis with
  Redis's own clock, so workers on machines with skewed clocks still agree. In-flight
  leases expire after ``lease_ttl_s`` so a worker killed mid-request cannot hold its slots
  forever.
"""
from __future__ import annotations

import collections
import itertools
import json
import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bananaflow.errors import ConfigurationError
from bananaflow.limits.meters import DailyQuota, Demand, InFlightCap, Meter, WindowMeter
from bananaflow.providers.quota_day import next_quota_reset, quota_day
from bananaflow.secrets import mask_url

REDIS_URL_ENV = "BANANAFLOW_REDIS_URL"
REDIS_NAMESPACE_ENV = "BANANAFLOW_REDIS_NAMESPACE"
#: How often a request waiting for an in-flight slot looks again (slots free when others finish).
SLOT_POLL_S = 0.01


@dataclass(frozen=True)
class Verdict:
    """A backend's answer. Admitted: ``wait_s == 0`` and a ``lease`` to release later.
    Refused: wait ``wait_s`` and ask again, or, when ``parked_until`` (epoch seconds) is
    set, stop asking: the scope's daily quota is gone until then."""

    wait_s: float
    lease: str | None = None
    blocked_by: str = ""
    parked_until: float | None = None

    @property
    def admitted(self) -> bool:
        return self.lease is not None


class LimitBackend(Protocol):
    """Keeps meter counts for any number of scopes."""

    def try_admit(self, scope: str, meters: Sequence[Meter], demand: Demand, now: float) -> Verdict: ...

    def release(self, scope: str, lease: str) -> None: ...

    def settle(self, scope: str, lease: str, meters: Sequence[Meter], reserved: Demand, actual_cost_usd: float) -> None:
        """Replace a request's reserved worst-case cost by what it really cost."""
        ...

    def cooldown(self, scope: str, seconds: float, now: float) -> None: ...

    def park(self, scope: str, until_epoch: float) -> None: ...

    def parked_until(self, scope: str, now: float) -> float | None: ...


def next_start_after(meter: WindowMeter, scheduled: float, now: float) -> float:
    """The spaced start after one made at ``now`` that was due at ``scheduled``.

    A waiter wakes a little late (sleep overshoots by a millisecond or two); counting the
    next interval from ``now`` would lose that much on every request, 1-2% of the rate at
    600/min. Up to half an interval of lateness is credited instead, so the schedule keeps
    its pace; after an idle spell the schedule starts afresh from ``now``. The sliding
    window still bounds every 60 s exactly.
    """
    base = scheduled if scheduled >= now - meter.interval_s / 2 else now  # idle: start afresh
    return base + meter.interval_s


@dataclass
class _ScopeState:
    windows: dict[str, collections.deque[tuple[float, float, str]]] = field(default_factory=dict)
    next_start: dict[str, float] = field(default_factory=dict)
    leases: set[str] = field(default_factory=set)
    day: str = ""
    day_count: int = 0
    cooldown_until: float = 0.0
    parked_until: float = 0.0


class InProcessBackend:
    """Meter counts in this process's memory, behind one lock (threads and event loops alike)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scopes: dict[str, _ScopeState] = collections.defaultdict(_ScopeState)
        self._lease_ids = itertools.count(1)  # unique within the process is enough here; uuid4 costs a syscall per request

    def try_admit(self, scope: str, meters: Sequence[Meter], demand: Demand, now: float) -> Verdict:
        with self._lock:
            st = self._scopes[scope]
            if now < st.parked_until:
                return Verdict(0.0, blocked_by="requests_per_day", parked_until=st.parked_until)
            if now < st.cooldown_until:
                return Verdict(st.cooldown_until - now, blocked_by="cooldown")
            wait, blocked_by = 0.0, ""
            for meter in meters:
                if isinstance(meter, InFlightCap):
                    w = SLOT_POLL_S if len(st.leases) >= meter.limit else 0.0
                elif isinstance(meter, DailyQuota):
                    if st.day != quota_day(now):
                        st.day, st.day_count = quota_day(now), 0
                    if st.day_count >= meter.limit:
                        st.parked_until = next_quota_reset(now).timestamp()
                        return Verdict(0.0, blocked_by=meter.name, parked_until=st.parked_until)
                    w = 0.0
                else:
                    w = self._window_wait(st, meter, demand.amount(meter.unit), now)
                if w > wait:
                    wait, blocked_by = w, meter.name
            if wait > 0:
                return Verdict(wait, blocked_by=blocked_by)
            lease = f"L{next(self._lease_ids)}"
            for meter in meters:
                if isinstance(meter, InFlightCap):
                    continue
                if isinstance(meter, DailyQuota):
                    st.day_count += 1
                    continue
                st.windows.setdefault(meter.name, collections.deque()).append((now, demand.amount(meter.unit), lease))
                if meter.spaced:
                    st.next_start[meter.name] = next_start_after(meter, st.next_start.get(meter.name, 0.0), now)
            st.leases.add(lease)
            return Verdict(0.0, lease=lease)

    @staticmethod
    def _window_wait(st: _ScopeState, meter: WindowMeter, amount: float, now: float) -> float:
        log = st.windows.setdefault(meter.name, collections.deque())
        span = meter.window_s + meter.margin_s
        while log and log[0][0] <= now - span:
            log.popleft()
        wait = max(0.0, st.next_start.get(meter.name, 0.0) - meter.tolerance_s - now) if meter.spaced else 0.0
        used = sum(entry[1] for entry in log)
        if used + amount > meter.limit + 1e-9:
            # the window frees enough once the oldest entries age out
            for start, spent, _ in log:
                used -= spent
                if used + amount <= meter.limit + 1e-9:
                    wait = max(wait, start + span - now)
                    break
            else:
                wait = max(wait, span)  # a single demand larger than the limit: never admitted here
        return wait

    def release(self, scope: str, lease: str) -> None:
        with self._lock:
            self._scopes[scope].leases.discard(lease)

    def settle(self, scope: str, lease: str, meters: Sequence[Meter], reserved: Demand, actual_cost_usd: float) -> None:
        with self._lock:
            st = self._scopes[scope]
            for meter in meters:
                if isinstance(meter, WindowMeter) and meter.unit == "cost_usd":
                    log = st.windows.get(meter.name, collections.deque())
                    for i, (start, _, owner) in enumerate(log):
                        if owner == lease:
                            log[i] = (start, actual_cost_usd, owner)
                            break

    def cooldown(self, scope: str, seconds: float, now: float) -> None:
        with self._lock:
            st = self._scopes[scope]
            st.cooldown_until = max(st.cooldown_until, now + seconds)

    def park(self, scope: str, until_epoch: float) -> None:
        with self._lock:
            st = self._scopes[scope]
            st.parked_until = max(st.parked_until, until_epoch)

    def parked_until(self, scope: str, now: float) -> float | None:
        with self._lock:
            until = self._scopes[scope].parked_until
            return until if until > now else None


# One atomic admission over a list of meters. Times come from Redis (TIME), except the
# quota day and the park deadline, which are calendar facts the client computes.
_ADMIT_LUA = r"""
local prefix = ARGV[1]
local meters = cjson.decode(ARGV[2])
local images = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local lease = ARGV[5]
local lease_ttl = tonumber(ARGV[6])
local day = ARGV[7]
local day_reset = tonumber(ARGV[8])
local wall = tonumber(ARGV[9])
local poll = tonumber(ARGV[10])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000

local parked = tonumber(redis.call('GET', prefix .. ':parked') or '0')
if parked > wall then return {'parked', tostring(parked), 'requests_per_day'} end
local cd = tonumber(redis.call('GET', prefix .. ':cooldown') or '0')
if cd > now then return {'wait', tostring(cd - now), 'cooldown'} end

local function amount(unit)
  if unit == 'requests' then return 1 elseif unit == 'images' then return images else return cost end
end

local wait, by = 0, ''
for _, m in ipairs(meters) do
  local w = 0
  if m.kind == 'in_flight' then
    local key = prefix .. ':inflight'
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    if redis.call('ZCARD', key) >= m.limit then w = poll end
  elseif m.kind == 'daily' then
    local used = tonumber(redis.call('GET', prefix .. ':day:' .. day) or '0')
    if used >= m.limit then
      redis.call('SET', prefix .. ':parked', tostring(day_reset))
      redis.call('EXPIREAT', prefix .. ':parked', math.ceil(day_reset) + 60)
      return {'parked', tostring(day_reset), m.name}
    end
  else
    local key = prefix .. ':w:' .. m.name
    local span = m.window_s + m.margin_s
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - span)
    local need = amount(m.unit)
    if m.unit == 'cost_usd' then
      local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
      local used = 0
      for i = 1, #entries, 2 do used = used + tonumber(string.match(entries[i], '|(.*)$')) end
      if used + need > m.limit + 1e-9 then
        w = span
        for i = 1, #entries, 2 do
          used = used - tonumber(string.match(entries[i], '|(.*)$'))
          if used + need <= m.limit + 1e-9 then w = tonumber(entries[i + 1]) + span - now; break end
        end
      end
    else
      local count = redis.call('ZCARD', key)
      if count + need > m.limit then
        local idx = count + need - m.limit - 1
        local oldest = redis.call('ZRANGE', key, idx, idx, 'WITHSCORES')
        if oldest[2] then w = tonumber(oldest[2]) + span - now else w = span end
      end
    end
    if m.spaced then
      local nxt = tonumber(redis.call('GET', key .. ':next') or '0')
      if nxt - m.tolerance_s - now > w then w = nxt - m.tolerance_s - now end
    end
  end
  if w > wait then wait, by = w, m.name end
end
if wait > 0 then return {'wait', tostring(wait), by} end

for _, m in ipairs(meters) do
  if m.kind == 'in_flight' then
    redis.call('ZADD', prefix .. ':inflight', now + lease_ttl, lease)
    redis.call('EXPIRE', prefix .. ':inflight', math.ceil(lease_ttl) + 60)
  elseif m.kind == 'daily' then
    local key = prefix .. ':day:' .. day
    redis.call('INCR', key)
    redis.call('EXPIREAT', key, math.ceil(day_reset) + 3600)
  else
    local key = prefix .. ':w:' .. m.name
    local span = m.window_s + m.margin_s
    if m.unit == 'cost_usd' then
      redis.call('ZADD', key, now, lease .. '|' .. tostring(cost))
    else
      for i = 1, amount(m.unit) do redis.call('ZADD', key, now, lease .. ':' .. i) end
    end
    redis.call('EXPIRE', key, math.ceil(span) + 60)
    if m.spaced then
      local nxt = tonumber(redis.call('GET', key .. ':next') or '0')
      if nxt < now - m.interval_s / 2 then nxt = now end
      redis.call('SET', key .. ':next', tostring(nxt + m.interval_s), 'EX', math.ceil(span) + 60)
    end
  end
end
return {'ok', '0', lease}
"""

_SETTLE_LUA = r"""
local key, old, new = KEYS[1], ARGV[1], ARGV[2]
local score = redis.call('ZSCORE', key, old)
if score then redis.call('ZREM', key, old); redis.call('ZADD', key, score, new) end
return 1
"""

_COOLDOWN_LUA = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local untl = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if untl > cur then redis.call('SET', KEYS[1], tostring(untl), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000) end
return 1
"""


def _meter_json(meter: Meter) -> dict[str, object]:
    if isinstance(meter, InFlightCap):
        return {"kind": "in_flight", "name": meter.name, "limit": meter.limit}
    if isinstance(meter, DailyQuota):
        return {"kind": "daily", "name": meter.name, "limit": meter.limit}
    return {
        "kind": "window", "name": meter.name, "limit": meter.limit, "window_s": meter.window_s,
        "margin_s": meter.margin_s, "unit": meter.unit, "spaced": meter.spaced, "interval_s": meter.interval_s,
        "tolerance_s": meter.tolerance_s,
    }


class RedisBackend:
    """Meter counts in Redis, shared by every worker that names the same ``namespace``.

    Keys are ``{namespace}:{scope}:...`` and all expire on their own, so nothing needs
    cleaning up after a run.
    """

    def __init__(self, url: str, *, namespace: str = "bananaflow", lease_ttl_s: float = 600.0) -> None:
        import redis

        self.namespace = namespace
        self.lease_ttl_s = lease_ttl_s
        self._redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise ConfigurationError(
                f"cannot reach Redis at {mask_url(url)} ({REDIS_URL_ENV}): {exc}; "
                "start it or unset the variable to meter in this process only"
            ) from exc
        self._admit = self._redis.register_script(_ADMIT_LUA)
        self._settle = self._redis.register_script(_SETTLE_LUA)
        self._cooldown = self._redis.register_script(_COOLDOWN_LUA)

    def _prefix(self, scope: str) -> str:
        return f"{self.namespace}:{scope}"

    def try_admit(self, scope: str, meters: Sequence[Meter], demand: Demand, now: float) -> Verdict:
        lease = uuid.uuid4().hex
        kind, value, detail = self._admit(args=[
            self._prefix(scope), json.dumps([_meter_json(m) for m in meters]), demand.images,
            repr(float(demand.cost_usd)), lease, self.lease_ttl_s, quota_day(now),
            next_quota_reset(now).timestamp(), now, max(SLOT_POLL_S, 0.02),
        ])
        kind, detail = kind.decode(), detail.decode()
        if kind == "ok":
            return Verdict(0.0, lease=detail)
        if kind == "parked":
            return Verdict(0.0, blocked_by=detail, parked_until=float(value))
        return Verdict(float(value), blocked_by=detail)

    def release(self, scope: str, lease: str) -> None:
        self._redis.zrem(f"{self._prefix(scope)}:inflight", lease)

    def settle(self, scope: str, lease: str, meters: Sequence[Meter], reserved: Demand, actual_cost_usd: float) -> None:
        for meter in meters:
            if isinstance(meter, WindowMeter) and meter.unit == "cost_usd":
                self._settle(
                    keys=[f"{self._prefix(scope)}:w:{meter.name}"],
                    args=[f"{lease}|{float(reserved.cost_usd)!r}", f"{lease}|{float(actual_cost_usd)!r}"],
                )

    def cooldown(self, scope: str, seconds: float, now: float) -> None:
        self._cooldown(keys=[f"{self._prefix(scope)}:cooldown"], args=[seconds])

    def park(self, scope: str, until_epoch: float) -> None:
        key = f"{self._prefix(scope)}:parked"
        current = float(self._redis.get(key) or 0)
        if until_epoch > current:
            self._redis.set(key, repr(until_epoch), exat=int(until_epoch) + 60)

    def parked_until(self, scope: str, now: float) -> float | None:
        until = float(self._redis.get(f"{self._prefix(scope)}:parked") or 0)
        return until if until > now else None


def backend_from_env(environ: dict[str, str] | None = None, *, namespace: str | None = None) -> LimitBackend:
    """Redis when ``BANANAFLOW_REDIS_URL`` is set, otherwise this process only. Runs meter
    together when they share the URL and ``BANANAFLOW_REDIS_NAMESPACE`` (default
    ``bananaflow``): give two projects on one Redis different namespaces."""
    env = os.environ if environ is None else environ
    url = (env.get(REDIS_URL_ENV) or "").strip()
    namespace = namespace or (env.get(REDIS_NAMESPACE_ENV) or "").strip() or "bananaflow"
    return RedisBackend(url, namespace=namespace) if url else InProcessBackend()
